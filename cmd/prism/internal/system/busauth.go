package system

import (
	"crypto/rand"
	"path/filepath"
	"strings"
)

// The NATS users of deploy/nats/auth.conf besides the roles' own (named
// after the roles): the admin that `prism setup` runs as, and the
// template of another system's intake user.
const (
	AdminUser         = "admin"
	IntakeExampleUser = "intake-example"
)

// AuthConfPath is deploy/nats/auth.conf under the repository root.
func AuthConfPath(root string) string { return filepath.Join(root, "deploy", "nats", "auth.conf") }

// PasswordEnv is the server's variable holding user's password in
// auth.conf: PRISM_NATS_<USER>_PASSWORD, e.g. PRISM_NATS_INTAKE_EXAMPLE_PASSWORD.
func PasswordEnv(user string) string {
	return "PRISM_NATS_" + strings.ToUpper(strings.ReplaceAll(user, "-", "_")) + "_PASSWORD"
}

// BusUsers lists every user of auth.conf: the admin, one per role (in
// start order), the intake template.
func BusUsers() []string {
	return append(append([]string{AdminUser}, RoleNames()...), IntakeExampleUser)
}

// BusAuth is a password for each user of auth.conf, made up for one run
// of a test or harness: ServerEnv is what a server loading auth.conf
// needs in its environment, ClientEnv what a process signing in as one
// user needs in its own.
type BusAuth map[string]string

// NewBusAuth makes a random password for every user of BusUsers.
func NewBusAuth() BusAuth {
	a := BusAuth{}
	for _, u := range BusUsers() {
		a[u] = rand.Text()
	}
	return a
}

// ServerEnv is PRISM_NATS_<USER>_PASSWORD of every user.
func (a BusAuth) ServerEnv() map[string]string {
	env := map[string]string{}
	for u, p := range a {
		env[PasswordEnv(u)] = p
	}
	return env
}

// ClientEnv is NATS_USER and NATS_PASSWORD of user.
func (a BusAuth) ClientEnv(user string) map[string]string {
	return map[string]string{"NATS_USER": user, "NATS_PASSWORD": a[user]}
}
