package httpd

import (
	"fmt"
	"net/http"
	"time"

	"github.com/kickstand/kickstand/internal/install"
)

// callbackReadTime bounds how long an installer may take to send a
// callback's body (the failed log): a trickled body must not hold a
// connection.
const callbackReadTime = 30 * time.Second

// callback handles POST /cb/{token}/built and /cb/{token}/failed from the
// installer's %post and %onerror; install.Service.Callback decides.
func (s *Server) callback(w http.ResponseWriter, r *http.Request) {
	setClass(w, "callback")
	http.NewResponseController(w).SetReadDeadline(time.Now().Add(callbackReadTime))
	req := install.Request{Token: r.PathValue("token"), Client: clientAddr(r), Server: serverAddr(r)}
	msg, err := s.Install.Callback(r.Context(), req, r.PathValue("what"), r.Body)
	if err != nil {
		s.refuse(w, r, "callback", err)
		return
	}
	fmt.Fprintln(w, msg)
}
