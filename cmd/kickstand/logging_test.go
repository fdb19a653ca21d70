package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// --log-format json makes serve's log one JSON object per line; a bad
// --log-format or --log-level is a usage error.
func TestServeLogFormatJSON(t *testing.T) {
	bin := buildBinary(t)
	dir := t.TempDir()
	cfg := filepath.Join(dir, "k.yaml")
	os.WriteFile(cfg, []byte(fmt.Sprintf("server:\n  http: \"127.0.0.1:%d\"\n  address_v4: 127.0.0.1\n  data_dir: data\n", freePort(t))), 0o644)
	cmd := exec.Command(bin, "serve", "--config", cfg, "--log-format", "json", "--log-level", "debug")
	stderr, _ := cmd.StderrPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	lines := make(chan string)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	deadline := time.After(30 * time.Second)
	for {
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatal("serve exited before listening")
			}
			var rec map[string]any
			if err := json.Unmarshal([]byte(l), &rec); err != nil {
				t.Fatalf("--log-format json wrote a line that is not JSON: %q", l)
			}
			if rec["msg"] == "http listening" && rec["level"] == "INFO" {
				return
			}
		case <-deadline:
			t.Fatal("no http listening line in 30s")
		}
	}
}

func TestLogFlags(t *testing.T) {
	g := &globals{logFormat: "text", logLevel: "warn"}
	if err := g.checkLogFlags(); err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	l := g.logger(&b)
	l.Info("quiet")
	l.Warn("loud", "k", "v")
	if strings.Contains(b.String(), "quiet") || !strings.Contains(b.String(), "level=WARN msg=loud k=v") {
		t.Errorf("--log-level warn wrote %q", b.String())
	}
	// One-shot commands log nothing unless --log-level was given.
	b.Reset()
	g.quietLogger(&b).Error("x")
	if b.Len() != 0 {
		t.Errorf("quiet logger wrote %q", b.String())
	}
	for _, args := range [][]string{{"--log-format", "xml", "version"}, {"--log-level", "loud", "version"}} {
		if _, e, code := runCLI(t, nil, args...); code != 2 || !strings.Contains(e, args[1]) {
			t.Errorf("%v: exit %d, %q", args, code, e)
		}
	}
}
