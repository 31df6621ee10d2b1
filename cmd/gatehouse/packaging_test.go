package main

import (
	"bufio"
	"crypto/rand"
	"encoding/hex"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// unitPath is the systemd unit shipped for operators.
const unitPath = "packaging/gatehouse.service"

// unitProperty is one Key=Value line of the unit's [Service] section.
type unitProperty struct{ key, value string }

// serviceProperties reads the [Service] section of the unit.
func serviceProperties(t *testing.T) []unitProperty {
	t.Helper()
	f, err := os.Open(unitPath)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []unitProperty
	section := ""
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		switch {
		case line == "" || strings.HasPrefix(line, "#"):
		case strings.HasPrefix(line, "["):
			section = line
		case section == "[Service]":
			k, v, ok := strings.Cut(line, "=")
			if !ok {
				t.Fatalf("unit line %q", line)
			}
			out = append(out, unitProperty{k, v})
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// needTool finds an external program: a test without it skips, or fails
// when CI=true.
func needTool(t *testing.T, name, install string) string {
	t.Helper()
	path, err := exec.LookPath(name)
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s is not installed; CI must run this test (.ci/deps installs %s)", name, install)
		}
		t.Skipf("%s is not installed (apt-get install %s); CI=true makes this a failure", name, install)
	}
	return path
}

// TestSystemdUnitVerifies: the unit passes `systemd-analyze verify` with
// no warning at all (verify exits 0 on unknown keys and only warns), and
// has the sandboxing the operators were promised. verify insists that
// ExecStart's program exists: the copy it checks runs this test binary.
func TestSystemdUnitVerifies(t *testing.T) {
	analyze := needTool(t, "systemd-analyze", "systemd")
	props := map[string][]string{}
	for _, p := range serviceProperties(t) {
		props[p.key] = append(props[p.key], p.value)
	}
	for key, want := range map[string]string{
		"ExecStart":               "/usr/local/bin/gatehouse serve",
		"DynamicUser":             "yes",
		"User":                    "gatehouse",
		"StateDirectory":          "gatehouse",
		"ProtectSystem":           "strict",
		"NoNewPrivileges":         "yes",
		"RestrictAddressFamilies": "AF_UNIX AF_INET AF_INET6",
		"PrivateTmp":              "yes",
		"ProtectHome":             "yes",
		"CapabilityBoundingSet":   "",
		"MemoryDenyWriteExecute":  "yes",
		"SystemCallFilter":        "@system-service",
		"EnvironmentFile":         "-/etc/gatehouse/gatehouse.env",
	} {
		if got := props[key]; len(got) == 0 || got[0] != want {
			t.Errorf("%s=%q, want %q", key, got, want)
		}
	}

	unit, err := os.ReadFile(unitPath)
	if err != nil {
		t.Fatal(err)
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	checked := filepath.Join(t.TempDir(), "gatehouse.service")
	if err := os.WriteFile(checked, []byte(strings.ReplaceAll(string(unit), "/usr/local/bin/gatehouse", self)), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(analyze, "verify", "--man=no", checked).CombinedOutput()
	if err != nil || len(out) != 0 {
		t.Fatalf("systemd-analyze verify: %v\n%s", err, out)
	}
}

// TestServeUnderSystemd starts gatehouse serve as a transient service
// with the unit's properties (systemd-run) and checks that it serves from
// its state directory as an unprivileged, sandboxed process. It needs
// systemd running as PID 1 and root, and skips otherwise, even under
// CI=true: CI's machines are containers without systemd as PID 1.
func TestServeUnderSystemd(t *testing.T) {
	if _, err := os.Stat("/run/systemd/system"); err != nil {
		t.Skip("systemd is not running as PID 1 here (containers often lack it)")
	}
	if os.Geteuid() != 0 {
		t.Skip("systemd-run of a system service needs root")
	}
	run := needTool(t, "systemd-run", "systemd")
	systemctl := needTool(t, "systemctl", "systemd")

	// The service cannot see this test binary where go test left it (in
	// /tmp, private to it): a copy goes to /opt, which it can read.
	suffix := make([]byte, 4)
	rand.Read(suffix)
	name := "gatehouse-test-" + hex.EncodeToString(suffix)
	dir := filepath.Join("/opt", name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "gatehouse")
	copyFile(t, self, bin)

	addr := freeAddr(t)
	state := "/var/lib/" + name
	args := []string{"--unit", name, "--quiet", "--collect"}
	for _, p := range serviceProperties(t) {
		switch p.key {
		case "ExecStart", "ExecReload", "EnvironmentFile", "Environment", "StateDirectory", "WorkingDirectory":
			continue // given below, for this test's own state directory
		}
		args = append(args, "-p", p.key+"="+p.value)
	}
	args = append(args, "-p", "StateDirectory="+name, "-p", "WorkingDirectory="+state,
		"-p", "Environment=GATEHOUSE_TEST_CHILD_SERVE=1",
		"-p", "Environment=GATEHOUSE_DB=sqlite:"+state+"/gatehouse.db",
		"-p", "Environment=GATEHOUSE_SECRET_KEY_FILE="+state+"/secret.key",
		"-p", "Environment=GATEHOUSE_ADDR="+addr,
		bin, "serve")
	if out, err := exec.Command(run, args...).CombinedOutput(); err != nil {
		t.Fatalf("systemd-run: %v\n%s", err, out)
	}
	t.Cleanup(func() {
		exec.Command(systemctl, "stop", name).Run()
		os.RemoveAll(filepath.Join("/var/lib/private", name))
		os.Remove(state)
	})
	logs := func() string {
		out, _ := exec.Command("journalctl", "--no-pager", "-u", name).CombinedOutput()
		return string(out)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		res, err := http.Get("http://" + addr + "/readyz") // the database in the state directory answers
		if err == nil {
			body, _ := io.ReadAll(res.Body)
			res.Body.Close()
			if res.StatusCode == 200 {
				break
			}
			err = &unexpected{res.StatusCode, string(body)}
		}
		if time.Now().After(deadline) {
			t.Fatalf("the service did not get ready: %v\n%s", err, logs())
		}
		time.Sleep(100 * time.Millisecond)
	}
	out, err := exec.Command(systemctl, "show", "-p", "MainPID", "--value", name).Output()
	if err != nil {
		t.Fatal(err)
	}
	pid, _ := strconv.Atoi(strings.TrimSpace(string(out)))
	status, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		t.Fatalf("MainPID %q: %v", out, err)
	}
	fields := map[string]string{}
	for _, line := range strings.Split(string(status), "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok {
			fields[k] = strings.Join(strings.Fields(v), " ")
		}
	}
	if uid := strings.Fields(fields["Uid"]); len(uid) == 0 || uid[0] == "0" {
		t.Errorf("runs as uid %q", fields["Uid"])
	}
	for key, want := range map[string]string{"NoNewPrivs": "1", "Seccomp": "2", "CapEff": "0000000000000000", "CapBnd": "0000000000000000"} {
		if fields[key] != want {
			t.Errorf("%s: %q, want %q", key, fields[key], want)
		}
	}
	if _, err := os.Stat(filepath.Join("/var/lib/private", name, "gatehouse.db")); err != nil {
		t.Errorf("the database is not in the state directory: %v", err)
	}
	if out, err := exec.Command(systemctl, "stop", name).CombinedOutput(); err != nil {
		t.Fatalf("systemctl stop: %v %s", err, out)
	}
	if !strings.Contains(logs(), "gatehouse stopped") {
		t.Errorf("no clean stop in the journal:\n%s", logs())
	}
}

type unexpected struct {
	status int
	body   string
}

func (u *unexpected) Error() string { return strconv.Itoa(u.status) + " " + u.body }

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	data, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, data, 0o755); err != nil {
		t.Fatal(err)
	}
}

// TestDockerfile: the Dockerfile cannot be built here (no container
// builder), so this checks what can go stale without a build: its Go
// builder image is the Go release go.mod asks for, its runtime is the
// builder's Debian release (the binary links glibc), and it runs as a
// user that is not root with its state in the /data volume.
func TestDockerfile(t *testing.T) {
	docker, err := os.ReadFile("packaging/Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	mod, err := os.ReadFile("../../go.mod")
	if err != nil {
		t.Fatal(err)
	}
	var goVersion string
	for _, line := range strings.Split(string(mod), "\n") {
		if v, ok := strings.CutPrefix(line, "go "); ok {
			parts := strings.Split(strings.TrimSpace(v), ".")
			goVersion = strings.Join(parts[:min(2, len(parts))], ".")
		}
	}
	var froms []string
	have := map[string]bool{}
	for _, line := range strings.Split(string(docker), "\n") {
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		switch f[0] {
		case "FROM":
			froms = append(froms, f[1])
		case "USER", "VOLUME", "ENTRYPOINT", "HEALTHCHECK":
			have[f[0]+" "+f[1]] = true
		}
	}
	if len(froms) != 2 || froms[0] != "golang:"+goVersion+"-bookworm" || froms[1] != "debian:bookworm-slim" {
		t.Errorf("FROM %q; want golang:%s-bookworm (go.mod's go %s) then debian:bookworm-slim", froms, goVersion, goVersion)
	}
	for _, want := range []string{"USER gatehouse", "VOLUME /data", `ENTRYPOINT ["/usr/local/bin/gatehouse"]`, "HEALTHCHECK --interval=30s"} {
		if !have[want] {
			t.Errorf("the Dockerfile lacks %q", want)
		}
	}
	for _, want := range []string{"GATEHOUSE_DB=sqlite:/data/", "GATEHOUSE_SECRET_KEY_FILE=/data/", "CGO_ENABLED=1", "/healthz"} {
		if !strings.Contains(string(docker), want) {
			t.Errorf("the Dockerfile lacks %q", want)
		}
	}
}
