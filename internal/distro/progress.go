package distro

import (
	"fmt"
	"io"
	"strings"
	"time"
)

// Progress reports an import's progress: a bar redrawn in place with a
// carriage return on a terminal, plain lines at intervals otherwise (logs
// and CI output must not fill with redraws).
type Progress struct {
	W        io.Writer
	Terminal bool
	Label    string        // e.g. "import centos7.2"
	Every    time.Duration // between plain lines; default 5s
	Now      func() time.Time

	total, done, skipped int64
	files, filesDone     int
	start, last          time.Time
	started              bool
}

const (
	barWidth   = 30
	barRefresh = 100 * time.Millisecond
)

func (p *Progress) now() time.Time {
	if p.Now != nil {
		return p.Now()
	}
	return time.Now()
}

// Start begins reporting a copy of total bytes in files files.
func (p *Progress) Start(total int64, files int) {
	if p == nil {
		return
	}
	p.total, p.files = total, files
	p.start = p.now()
	p.last = p.start
	p.started = true
}

// Skip counts a file already in place from an earlier run. It counts
// towards done, not towards the rate.
func (p *Progress) Skip(size int64) {
	if p == nil {
		return
	}
	p.done += size
	p.skipped += size
	p.filesDone++
}

// Add counts n bytes copied.
func (p *Progress) Add(n int64) {
	if p == nil {
		return
	}
	p.done += n
	p.maybeDraw()
}

// FileDone counts one file finished.
func (p *Progress) FileDone() {
	if p == nil {
		return
	}
	p.filesDone++
	p.maybeDraw()
}

// Finish prints the final state, ending the bar's line.
func (p *Progress) Finish() {
	if p == nil || !p.started || p.W == nil {
		return
	}
	if p.Terminal {
		fmt.Fprintf(p.W, "\r%s\n", p.bar())
	} else {
		fmt.Fprintln(p.W, p.line())
	}
	p.started = false
}

func (p *Progress) maybeDraw() {
	if !p.started || p.W == nil {
		return
	}
	now := p.now()
	every := p.Every
	if every <= 0 {
		every = 5 * time.Second
	}
	if p.Terminal {
		every = barRefresh
	}
	if now.Sub(p.last) < every {
		return
	}
	p.last = now
	if p.Terminal {
		fmt.Fprintf(p.W, "\r%s", p.bar())
	} else {
		fmt.Fprintln(p.W, p.line())
	}
}

func (p *Progress) fraction() float64 {
	if p.total <= 0 {
		return 1
	}
	return min(float64(p.done)/float64(p.total), 1)
}

func (p *Progress) rate() string {
	secs := p.now().Sub(p.start).Seconds()
	if secs <= 0 {
		return "-"
	}
	return HumanBytes(int64(float64(p.done-p.skipped)/secs)) + "/s"
}

func (p *Progress) bar() string {
	f := p.fraction()
	fill := int(f * barWidth)
	b := strings.Repeat("=", fill)
	if fill < barWidth {
		b += ">" + strings.Repeat(" ", barWidth-fill-1)
	}
	return fmt.Sprintf("%s [%s] %3d%% %s/%s %s  ", p.Label, b, int(f*100), HumanBytes(p.done), HumanBytes(p.total), p.rate())
}

func (p *Progress) line() string {
	return fmt.Sprintf("%s: %s of %s (%d%%), %d of %d files, %s", p.Label, HumanBytes(p.done), HumanBytes(p.total), int(p.fraction()*100), p.filesDone, p.files, p.rate())
}

// HumanBytes prints a byte count in binary units, as ls -h does.
func HumanBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit && exp < 5; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}
