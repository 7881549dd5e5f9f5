package statestore

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/drydock-go/statemgmt/gen/db"
)

// Notification channels raised by the schema's triggers (migration 005).
const (
	channelTaskQueued = "statemgmt_task_queued"
	channelMessage    = "statemgmt_message"
)

// listener holds one dedicated connection that LISTENs for the store's
// notifications and turns each into a broadcast: every waiter holds the
// current channel of its kind, which is closed (and replaced) when a
// notification arrives. Waiters always also poll, so a lost connection, a
// pooler that drops LISTEN, or a notification sent while reconnecting costs
// at most one poll interval, never a missed task.
type listener struct {
	cfg     *pgx.ConnConfig
	logger  *slog.Logger
	enabled bool

	mu      sync.Mutex
	started bool
	queued  chan struct{}
	message chan struct{}
	cancel  context.CancelFunc
	done    chan struct{}
}

func newListener(cfg *pgx.ConnConfig, logger *slog.Logger, enabled bool) *listener {
	return &listener{cfg: cfg, logger: logger, enabled: enabled,
		queued: make(chan struct{}), message: make(chan struct{})}
}

// signal returns the channel that closes at the next notification of the
// given kind, starting the listening connection on first use. Take it
// before checking the table, then wait on it: a notification that arrives
// in between is not missed.
func (l *listener) signal(channel string) <-chan struct{} {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.enabled && !l.started {
		l.started = true
		ctx, cancel := context.WithCancel(context.Background())
		l.cancel, l.done = cancel, make(chan struct{})
		go l.run(ctx)
	}
	if channel == channelMessage {
		return l.message
	}
	return l.queued
}

func (l *listener) fire(channel string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	switch channel {
	case channelTaskQueued:
		close(l.queued)
		l.queued = make(chan struct{})
	case channelMessage:
		close(l.message)
		l.message = make(chan struct{})
	}
}

// run keeps a LISTEN connection open until ctx ends, reconnecting with a
// capped backoff.
func (l *listener) run(ctx context.Context) {
	defer close(l.done)
	backoff := 100 * time.Millisecond
	for ctx.Err() == nil {
		err := l.listenOnce(ctx)
		if ctx.Err() != nil {
			return
		}
		l.logger.WarnContext(ctx, "statestore: notification listener lost; polling until it reconnects",
			"error", err, "retry_in", backoff)
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, 5*time.Second)
	}
}

func (l *listener) listenOnce(ctx context.Context) error {
	conn, err := pgx.ConnectConfig(ctx, l.cfg.Copy())
	if err != nil {
		return err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	q := db.New()
	if err := q.ListenTaskQueued(ctx, conn); err != nil {
		return err
	}
	if err := q.ListenMessage(ctx, conn); err != nil {
		return err
	}
	// Anything may have happened while not listening: wake everyone once.
	l.fire(channelTaskQueued)
	l.fire(channelMessage)
	for {
		n, err := conn.WaitForNotification(ctx)
		if err != nil {
			return err
		}
		l.fire(n.Channel)
	}
}

func (l *listener) close() {
	l.mu.Lock()
	cancel, done := l.cancel, l.done
	l.started = true // a closed listener never restarts
	l.enabled = false
	l.mu.Unlock()
	if cancel != nil {
		cancel()
		<-done
	}
}

// wait blocks until ch closes, the poll interval passes, or ctx ends.
func wait(ctx context.Context, ch <-chan struct{}, poll time.Duration) error {
	t := time.NewTimer(poll)
	defer t.Stop()
	select {
	case <-ch:
		return nil
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
