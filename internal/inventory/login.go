package inventory

import (
	"fmt"
	"maps"
	"regexp"
	"strings"
)

// Login is how the installed machine can be logged into, from the
// template variables the built-in kickstart honours: vars.rootpw (a
// crypted hash), vars.user (an account to create, in wheel) and
// vars.ssh_keys (public keys, one per line, for that user or else root).
// The renderer and the inventory's check read it from here, so the check
// refuses exactly the hosts whose kickstart would lock every login.
type Login struct {
	RootPW  string   // crypted; "" locks root's password
	User    string   // "" creates no account
	SSHKeys []string // authorized keys of KeyUser
	KeyUser string   // User, else root
}

// TemplateVars are the template variables a host renders with: its profile's,
// overridden by its own.
func (h *Host) TemplateVars(p *Profile) map[string]string {
	if p == nil || len(p.Vars) == 0 {
		return h.Vars
	}
	out := maps.Clone(p.Vars)
	maps.Copy(out, h.Vars)
	return out
}

// LoginOf reads the login variables.
func LoginOf(vars map[string]string) Login {
	l := Login{RootPW: strings.TrimSpace(vars["rootpw"]), User: strings.TrimSpace(vars["user"]), KeyUser: "root"}
	if l.User != "" {
		l.KeyUser = l.User
	}
	l.SSHKeys = sshKeys(vars["ssh_keys"])
	return l
}

// sshKeys are the keys of an ssh_keys variable: its lines that are not
// blank or comments.
func sshKeys(s string) []string {
	var out []string
	for _, k := range strings.Split(s, "\n") {
		if k = strings.TrimSpace(k); k != "" && !strings.HasPrefix(k, "#") {
			out = append(out, k)
		}
	}
	return out
}

var (
	// cryptRE is a crypt(3) hash as /etc/shadow holds it: $id$[params$]salt$hash
	// (md5, sha256, sha512, yescrypt, bcrypt, gost-yescrypt, scrypt).
	cryptRE = regexp.MustCompile(`^\$(1|5|6|y|gy|7|2[abxy])\$[./A-Za-z0-9$=,]{8,}$`)
	// sshKeyRE is an OpenSSH public key line: type, base64 blob, comment.
	sshKeyRE = regexp.MustCompile(`^(ssh-(rsa|dss|ed25519)|ecdsa-sha2-nistp(256|384|521)|sk-ssh-ed25519@openssh\.com|sk-ecdsa-sha2-nistp256@openssh\.com) [A-Za-z0-9+/]+={0,3}( [^"\\]*)?$`)
	// userRE is a user name useradd accepts everywhere.
	userRE = regexp.MustCompile(`^[a-z_][a-z0-9_-]{0,30}$`)
)

// LoginProblem is a problem of a login variable: its name ("rootpw",
// "user", "ssh_keys") and what is wrong.
type LoginProblem struct {
	Var, Msg string
}

// CheckLogin checks the login variables of a host whose kickstart is the
// built-in one, which writes them into rootpw, user and sshkey lines: a
// plain-text password, a malformed key or user would break the install or
// the login, and a host nobody could log into is refused (the built-in
// kickstart locks root unless told otherwise).
func CheckLogin(vars map[string]string) []LoginProblem {
	out := checkLoginVars(vars)
	if !canLogIn(vars["rootpw"], vars["ssh_keys"]) {
		out = append(out, LoginProblem{"", lockedMsg})
	}
	return out
}

const lockedMsg = "nobody could log into the installed machine: the built-in kickstart locks root; " +
	"set vars.rootpw (a crypted hash) or vars.ssh_keys, here or in the profile"

// CanLogIn says whether the built-in kickstart leaves a way into the host
// installed with profile p: a root hash or a key, the host's overriding
// the profile's. It builds no merged map: it runs for every host at every
// reload.
func (h *Host) CanLogIn(p *Profile) bool {
	get := func(k string) string {
		if s, ok := h.Vars[k]; ok || p == nil {
			return s
		}
		return p.Vars[k]
	}
	return canLogIn(get("rootpw"), get("ssh_keys"))
}

// canLogIn says whether a root password hash or a key lets anyone log in.
func canLogIn(rootpw, keys string) bool {
	if strings.TrimSpace(rootpw) != "" {
		return true
	}
	for k := range strings.Lines(keys) { // as sshKeys, without a slice
		if k = strings.TrimSpace(k); k != "" && !strings.HasPrefix(k, "#") {
			return true
		}
	}
	return false
}

// checkLoginVars checks the form of the login variables that are set.
func checkLoginVars(vars map[string]string) []LoginProblem {
	l := LoginOf(vars)
	var out []LoginProblem
	if l.RootPW != "" && !cryptRE.MatchString(l.RootPW) {
		out = append(out, LoginProblem{"rootpw", "want a crypted password hash (such as `openssl passwd -6` prints), never the password itself"})
	}
	if l.User != "" && (!userRE.MatchString(l.User) || l.User == "root") {
		out = append(out, LoginProblem{"user", fmt.Sprintf("%q is not a user name to create (lower case letters, digits, _ and -, not root)", l.User)})
	}
	for i, k := range l.SSHKeys {
		if !sshKeyRE.MatchString(k) {
			out = append(out, LoginProblem{"ssh_keys", fmt.Sprintf("key %d is not an OpenSSH public key line (type, base64, comment; no quotes): %.40q", i+1, k)})
		}
	}
	return out
}
