package assuan

import (
	"context"
	"fmt"
	"log/slog"
	"strings"

	"github.com/dirmngr/dirmngr/gpgerr"
)

// logFailure logs a failed command by name, as GnuPG's dirmngr does
// ("command 'ISVALID' failed: Certificate revoked"); the underlying cause,
// when it says more than the error text, follows once.
func (s *Session) logFailure(name string, herr error) {
	log := s.srv.log()
	if !log.Enabled(context.Background(), slog.LevelInfo) {
		return // nothing to format for a logger that drops it
	}
	text := gpgerr.CodeOf(herr).Error()
	msg := fmt.Sprintf("command '%s' failed: %s", name, text)
	// The cause without the repeated error text ("No such file or
	// directory: open X: no such file or directory" → "open X").
	cause := strings.TrimPrefix(herr.Error(), text+": ")
	cause = strings.TrimSuffix(cause, ": "+strings.ToLower(text))
	if cause != text && cause != "" {
		log.Info(msg, "session", s.ID, "cause", cause)
		return
	}
	log.Info(msg, "session", s.ID)
}
