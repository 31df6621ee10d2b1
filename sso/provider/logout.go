package provider

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/google/uuid"

	"gatehouse/store"
)

// Back-channel logout (OIDC Back-Channel Logout 1.0). The writes that end
// an administrator's sign-ins (deactivation, deletion, logout) queue a
// logout for each application they were signed in to, in their own
// transaction (store.OIDCLogout); every instance delivers them, each
// claimed by one instance at a time, retried with capped exponential
// backoff until the application accepts one. Delivery is at least once: a
// logout token carries a jti, and an application handles a repeat as it
// handles a logout of a session already gone.

const (
	// logoutPoll is how often an instance looks for logouts to deliver:
	// a look is one indexed read, and it bounds the delay from the
	// deprovisioning write to the application.
	logoutPoll = 250 * time.Millisecond
	// logoutLease is how long a claimed logout is one instance's.
	logoutLease = 30 * time.Second
	// logoutTimeout bounds one delivery.
	logoutTimeout = 10 * time.Second
	// logoutBatch is how many logouts an instance claims at once, and
	// delivers in parallel.
	logoutBatch = 16
	// Backoff of failed deliveries: 2 s doubling to 5 min.
	logoutRetryFirst = 2 * time.Second
	logoutRetryMax   = 5 * time.Minute
	// BackchannelLogoutEvent is the logout token's event (§2.4).
	BackchannelLogoutEvent = "http://schemas.openid.net/event/backchannel-logout"
)

// DeliverLogouts delivers queued back-channel logouts until ctx ends,
// posting them with client (serve's SSRF-guarded fetch client), whose
// redirects it does not follow: a logout token goes to the registered URI
// only.
func (p *Provider) DeliverLogouts(ctx context.Context, fetcher *http.Client) {
	client := *fetcher
	client.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	tick := time.NewTicker(logoutPoll)
	defer tick.Stop()
	for {
		for {
			n, err := p.deliverDue(ctx, &client)
			if err != nil && ctx.Err() == nil {
				p.logger().WarnContext(ctx, "back-channel logouts: cannot claim", "err", err)
			}
			if err != nil || n < logoutBatch {
				break
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// deliverDue claims the logouts due now and delivers them; it returns how
// many it claimed.
func (p *Provider) deliverDue(ctx context.Context, client *http.Client) (int, error) {
	due, err := p.Store.ClaimOIDCLogouts(ctx, p.now(), logoutLease, logoutBatch)
	if err != nil {
		return 0, err
	}
	var wg sync.WaitGroup
	for _, l := range due {
		wg.Go(func() { p.deliver(ctx, client, l) })
	}
	wg.Wait()
	return len(due), nil
}

func (p *Provider) deliver(ctx context.Context, client *http.Client, l store.OIDCLogout) {
	err := p.post(ctx, client, l)
	if err == nil {
		if err := p.Store.MarkOIDCLogoutSent(ctx, l.ID, p.now()); err != nil {
			p.logger().WarnContext(ctx, "back-channel logout delivered, not recorded", "id", l.ID, "err", err)
		}
		p.logger().InfoContext(ctx, "back-channel logout delivered", "client", l.ClientID, "administrator", l.AdministratorID,
			"queued_for", p.now().Sub(l.CreatedAt).String())
		return
	}
	wait := min(logoutRetryFirst<<min(l.Attempts, 20), logoutRetryMax)
	wait = wait/2 + rand.N(wait/2+1) // jitter: instances retrying one endpoint spread out
	p.logger().WarnContext(ctx, "back-channel logout failed", "client", l.ClientID, "attempt", l.Attempts+1, "retry_in", wait.String(), "err", err)
	if err := p.Store.MarkOIDCLogoutFailed(ctx, l.ID, err.Error(), p.now().Add(wait)); err != nil {
		p.logger().WarnContext(ctx, "back-channel logout failure not recorded", "id", l.ID, "err", err)
	}
}

// post sends one logout token to its client's back-channel logout URI.
// The client's answer must be 200 or 204 (§2.8).
func (p *Provider) post(ctx context.Context, client *http.Client, l store.OIDCLogout) error {
	c, err := p.Store.OIDCClient(ctx, l.ClientID)
	if err != nil {
		return fmt.Errorf("client %s: %w", l.ClientID, err)
	}
	if c.BackchannelLogoutURI == "" {
		return nil // removed since: nothing to tell
	}
	token, err := p.LogoutToken(ctx, l.ClientID, l.AdministratorID, l.SID)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, logoutTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.BackchannelLogoutURI,
		strings.NewReader(url.Values{"logout_token": {token}}.Encode()))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 300))
	if resp.StatusCode != http.StatusOK && resp.StatusCode != http.StatusNoContent {
		return fmt.Errorf("the application answered %d: %s", resp.StatusCode, strings.TrimSpace(string(body)))
	}
	return nil
}

// LogoutToken signs a logout token (§2.4) for client about the
// administrator sub and the session sid.
func (p *Provider) LogoutToken(ctx context.Context, client, sub, sid string) (string, error) {
	k, err := p.Keys.Active(ctx)
	if err != nil {
		return "", err
	}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.SignatureAlgorithm(k.Algorithm), Key: jose.JSONWebKey{Key: k.Key, KeyID: k.ID}},
		(&jose.SignerOptions{}).WithType("logout+jwt"))
	if err != nil {
		return "", err
	}
	now := p.now()
	claims := map[string]any{
		"iss": p.BaseURL, "aud": client, "iat": now.Unix(), "exp": now.Add(TokenLifetime).Unix(), "jti": uuid.NewString(),
		"sub": sub, "events": map[string]any{BackchannelLogoutEvent: map[string]any{}},
	}
	if sid != "" {
		claims["sid"] = sid
	}
	payload, err := json.Marshal(claims)
	if err != nil {
		return "", err
	}
	jws, err := signer.Sign(payload)
	if err != nil {
		return "", err
	}
	return jws.CompactSerialize()
}
