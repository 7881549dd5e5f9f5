package console

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/drydock-go/statemgmt/statestore"
)

// event is one message as the stream sends it (JSON in an SSE data line;
// the page inserts every field as text, never as markup).
type event struct {
	Sequence    int64           `json:"seq"`
	Time        string          `json:"time"`
	Error       bool            `json:"error"`
	Context     string          `json:"context"`
	ContextType string          `json:"context_type"`
	Message     string          `json:"message"`
	Extra       json.RawMessage `json:"extra,omitempty"`
}

// taskEvents streams a task's messages after ?after= (or the Last-Event-ID
// an EventSource sends when it reconnects) as Server-Sent Events, live, fed
// by Store.TailMessages: "message" events whose id is the sequence.
func (c *console) taskEvents(w http.ResponseWriter, r *http.Request) {
	id, err := uuid.Parse(r.PathValue("id"))
	if err != nil {
		c.fail(w, r, http.StatusBadRequest, "task id: not a UUID")
		return
	}
	after := int64(0)
	from, field := r.URL.Query().Get("after"), "after"
	if le := r.Header.Get("Last-Event-ID"); le != "" {
		from, field = le, "Last-Event-ID"
	}
	if from != "" {
		if after, err = strconv.ParseInt(from, 10, 64); err != nil || after < 0 {
			c.fail(w, r, http.StatusBadRequest, field+": must be a message sequence number (0 or more)")
			return
		}
	}
	ctx := r.Context()
	if _, err := c.store.GetTaskHeader(ctx, id); err != nil {
		c.storeFail(w, r, "read task", err)
		return
	}
	select {
	case c.streams <- struct{}{}:
		defer func() { <-c.streams }()
	default:
		w.Header().Set("Retry-After", "10")
		c.fail(w, r, http.StatusServiceUnavailable, "too many live streams open; try again later")
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/event-stream; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no") // nginx: do not buffer the stream
	w.WriteHeader(http.StatusOK)
	if r.Method == http.MethodHead {
		return
	}
	rc := http.NewResponseController(w)
	// A stream lasts as long as the client stays, so a server-wide write
	// timeout must not cut it; each write gets StreamWriteTimeout instead,
	// so a client that stops reading cannot hold its slot for ever.
	s := &sse{w: w, rc: rc, timeout: c.opts.StreamWriteTimeout}
	if err := rc.SetWriteDeadline(time.Now().Add(s.timeout)); err != nil {
		if !errors.Is(err, http.ErrNotSupported) {
			c.logger.WarnContext(ctx, "console: set the stream's write deadline", "err", err)
		}
		s.timeout = 0 // the writer cannot take deadlines: writes as they come
	}
	// retry: how long the browser waits before reconnecting (with Last-Event-ID).
	if err := s.send("retry: 2000\n: following task " + id.String() + "\n\n"); err != nil {
		return
	}
	ctx, cancel := context.WithCancel(ctx)
	heartbeats := make(chan struct{})
	// The heartbeat must have stopped writing before the handler returns
	// (a ResponseWriter is not to be used after ServeHTTP returns).
	defer func() {
		cancel()
		<-heartbeats
	}()
	go func() {
		defer close(heartbeats)
		t := time.NewTicker(c.opts.Heartbeat)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				// A task deleted while followed (retention) would otherwise
				// be followed for ever: say so and end the stream.
				if _, err := c.store.GetTaskHeader(ctx, id); errors.Is(err, statestore.ErrNotFound) {
					if err := s.send("event: gone\ndata: {\"error\":\"the task was deleted\"}\n\n"); err != nil {
						c.logger.DebugContext(ctx, "console: write stream end", "err", err)
					}
					cancel()
					return
				}
				if err := s.send(": heartbeat\n\n"); err != nil {
					cancel()
					return
				}
			}
		}
	}()
	err = c.store.TailMessages(ctx, id, after, func(m statestore.ResultMessage) error {
		data, err := json.Marshal(event{Sequence: m.Sequence, Time: fmtTime(m.Time), Error: m.Error,
			Context: m.Context, ContextType: m.ContextType, Message: m.Message, Extra: m.Extra})
		if err != nil {
			return fmt.Errorf("encode message %d: %w", m.Sequence, err)
		}
		// json.Marshal escapes every control character, so data is one line:
		// a stored value cannot end the event or add fields of its own.
		if err := s.send(fmt.Sprintf("id: %d\nevent: message\ndata: %s\n\n", m.Sequence, data)); err != nil {
			cancel() // the client is gone: the normal end of a stream
			return err
		}
		return nil
	})
	switch {
	case ctx.Err() != nil: // the client left (or a write failed): the normal end
	default:
		// The database failed: say so; the browser reconnects after retry
		// and resumes after the last id it saw.
		c.logger.WarnContext(ctx, "console: message stream ended", "task", id, "err", err)
		if err := s.send("event: failure\ndata: {\"error\":\"the stream lost the database; reconnecting\"}\n\n"); err != nil {
			c.logger.DebugContext(ctx, "console: write stream failure", "err", err)
		}
	}
}

// sse serialises writes of the tail and the heartbeat, flushing each.
type sse struct {
	mu      sync.Mutex
	w       http.ResponseWriter
	rc      *http.ResponseController
	timeout time.Duration // each write's deadline from its start; 0: none
}

func (s *sse) send(text string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.timeout > 0 {
		if err := s.rc.SetWriteDeadline(time.Now().Add(s.timeout)); err != nil {
			return fmt.Errorf("set stream write deadline: %w", err)
		}
	}
	if _, err := s.w.Write([]byte(text)); err != nil {
		return fmt.Errorf("write stream: %w", err)
	}
	if err := s.rc.Flush(); err != nil {
		return fmt.Errorf("flush stream: %w", err)
	}
	return nil
}
