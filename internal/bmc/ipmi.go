// Package bmc powers hosts and sets their next boot through their
// baseboard management controller, over IPMI v2.0 (lanplus).
//
// It uses github.com/bougou/go-ipmi (v0.9.1) rather than running ipmitool:
// it is pure Go, so kickstand stays one binary with no tool to install on
// the server, the password never appears on a command line (ps, /proc) or
// in an environment, and errors come back as values (an authentication
// failure is told apart from a BMC that does not answer) rather than as
// text to parse. v0.9.1 negotiates with OpenIPMI's ipmi_sim only with
// cipher suite 3 (HMAC-SHA1, AES-128), which most BMCs offer, so that is
// the suite asked for.
//
// The password is read from the host's bmc.password_file, which must be
// readable by its owner only; it is kept in memory for the session and
// appears in no error, log line or event.
package bmc

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/bougou/go-ipmi/pkg/client"
	"github.com/bougou/go-ipmi/pkg/command/chassis"
	"github.com/bougou/go-ipmi/pkg/types"

	"github.com/kickstand/kickstand/internal/inventory"
)

// Bounds on talking to a BMC: each attempt waits Timeout for an answer,
// and an unanswered BMC is tried Attempts times in all, Backoff apart and
// growing, so a dead BMC costs under half a minute and a handful of
// packets, never a storm. A refused login is not retried at all.
const (
	Timeout  = 3 * time.Second
	Attempts = 3
	Backoff  = time.Second
)

// ErrAuth is a BMC that refused the user or password.
var ErrAuth = errors.New("the BMC refused the user or password")

// ErrNoAnswer is a BMC that did not answer.
var ErrNoAnswer = errors.New("the BMC did not answer")

// IPMI is one host's BMC.
type IPMI struct {
	addr string
	c    *client.Client
	lim  limits
}

// limits are the bounds in force (tests shorten them).
type limits struct {
	timeout, backoff time.Duration
	attempts         int
}

var defaultLimits = limits{timeout: Timeout, backoff: Backoff, attempts: Attempts}

// Open reads the password and logs in. cfgPath resolves a relative
// password_file. The error names the address and what failed, never a
// credential.
func Open(ctx context.Context, b *inventory.BMC, cfgPath string) (*IPMI, error) {
	return open(ctx, b, cfgPath, defaultLimits)
}

func open(ctx context.Context, b *inventory.BMC, cfgPath string, lim limits) (*IPMI, error) {
	if b == nil || b.Driver != "ipmi" {
		return nil, errors.New("bmc: only driver ipmi is supported")
	}
	path := b.PasswordPath(cfgPath)
	if msg := inventory.PasswordFileProblem(path); msg != "" {
		return nil, fmt.Errorf("bmc %s: %s", b.Address, msg)
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("bmc %s: read password file: %w", b.Address, err)
	}
	pass := strings.TrimRight(string(raw), "\r\n")
	host, port := b.Address, 623
	if h, p, err := net.SplitHostPort(b.Address); err == nil {
		host = h
		if port, err = strconv.Atoi(p); err != nil {
			return nil, fmt.Errorf("bmc %s: bad port %q", b.Address, p)
		}
	}
	c, err := client.NewClient(host, port, b.User, pass)
	if err != nil {
		return nil, fmt.Errorf("bmc %s: %v", b.Address, err)
	}
	// go-ipmi's own retries are off: Attempts bounds them here, once.
	c.WithTimeout(lim.timeout).WithRetry(0).WithCipherSuiteID(types.CipherSuiteID3).WithMaxPrivilegeLevel(types.PrivilegeLevelAdministrator)
	m := &IPMI{addr: b.Address, c: c, lim: lim}
	if err := m.retry(ctx, "log in", func(ctx context.Context) error { return c.Connect(ctx) }); err != nil {
		return nil, err
	}
	return m, nil
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// retry runs op up to Attempts times while the BMC does not answer; a
// refusal or any other answer ends it.
func (m *IPMI) retry(ctx context.Context, what string, op func(context.Context) error) error {
	var err error
	for i := range m.lim.attempts {
		if i > 0 {
			if serr := sleepCtx(ctx, m.lim.backoff*time.Duration(1<<(i-1))); serr != nil {
				break
			}
		}
		err = op(ctx)
		if err == nil {
			return nil
		}
		if authFailure(err) {
			return fmt.Errorf("bmc %s: %s: %w", m.addr, what, ErrAuth)
		}
		if !noAnswer(err) {
			return fmt.Errorf("bmc %s: %s: %v", m.addr, what, scrub(err))
		}
	}
	return fmt.Errorf("bmc %s: %s: %w after %d attempts (%v each)", m.addr, what, ErrNoAnswer, m.lim.attempts, m.lim.timeout)
}

// authFailure and noAnswer classify go-ipmi's errors; v0.9.1 wraps some
// of them with %v, so the sentinel is not always reachable by errors.Is
// and the text is checked too.
func authFailure(err error) bool {
	var st *types.RmcpStatusError
	s := err.Error()
	return errors.Is(err, client.ErrRAKPAuthentication) || errors.As(err, &st) ||
		strings.Contains(s, "RAKP authentication failed") || strings.Contains(s, "RMCP+ status")
}

func noAnswer(err error) bool {
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return true
	}
	s := err.Error()
	return errors.Is(err, context.DeadlineExceeded) || strings.Contains(s, "timeout") || strings.Contains(s, "deadline") ||
		strings.Contains(s, "connection refused")
}

// scrub keeps an error's text to one line of bounded length: it is shown
// in events and the CLI.
func scrub(err error) string {
	s := strings.ReplaceAll(err.Error(), "\n", " ")
	if len(s) > 300 {
		s = s[:300] + "..."
	}
	return s
}

// PowerState is "on" or "off".
func (m *IPMI) PowerState(ctx context.Context) (string, error) {
	var on bool
	err := m.retry(ctx, "chassis status", func(ctx context.Context) error {
		st, err := m.c.GetChassisStatus(ctx)
		if err == nil {
			on = st.PowerIsOn
		}
		return err
	})
	if err != nil {
		return "", err
	}
	if on {
		return "on", nil
	}
	return "off", nil
}

// BootPXEOnce sets the next boot, and only it, to PXE.
func (m *IPMI) BootPXEOnce(ctx context.Context) error {
	return m.retry(ctx, "chassis bootdev pxe", func(ctx context.Context) error {
		return m.c.SetBootDevice(ctx, types.BootDeviceSelectorForcePXE, types.BIOSBootTypeLegacy, false)
	})
}

// Power sends a chassis control: on, off or cycle.
func (m *IPMI) Power(ctx context.Context, what string) error {
	ctl := map[string]chassis.ChassisControl{
		"on": chassis.ChassisControlPowerUp, "off": chassis.ChassisControlPowerDown, "cycle": chassis.ChassisControlPowerCycle,
	}
	c, ok := ctl[what]
	if !ok {
		return fmt.Errorf("bmc %s: unknown power action %q (want on, off or cycle)", m.addr, what)
	}
	return m.retry(ctx, "chassis power "+what, func(ctx context.Context) error {
		_, err := m.c.ChassisControl(ctx, c)
		return err
	})
}

// PowerCycle powers the machine off and on, or on when it is off (a
// power cycle of a machine that is off is refused by many BMCs).
func (m *IPMI) PowerCycle(ctx context.Context) error {
	st, err := m.PowerState(ctx)
	if err != nil {
		return err
	}
	if st == "off" {
		return m.Power(ctx, "on")
	}
	if err := m.Power(ctx, "off"); err != nil {
		return err
	}
	return m.Power(ctx, "on")
}

// Close ends the session.
func (m *IPMI) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), m.lim.timeout)
	defer cancel()
	return m.c.Close(ctx)
}
