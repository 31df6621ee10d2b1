// Command gatehouse is the identity service's one binary: the server
// (gatehouse serve) and the operator commands. Run gatehouse --help.
package main

import (
	"context"
	"os"
)

func main() {
	os.Exit(run(context.Background(), os.Args[1:], os.Stdout, os.Stderr, os.Getenv))
}
