package statestore

import (
	"context"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/drydock-go/statemgmt/gen/db"
)

// Notification channels. Queueing a task notifies channelTaskQueued from a
// trigger (payload: the task's action; migration 009); message appends
// notify channelMessage from the store's notifier after the append commits
// (payload: comma-separated task ids).
const (
	channelTaskQueued = "statemgmt_task_queued"
	channelMessage    = "statemgmt_message"
)

// Listener reconnect backoff: the first retry after a drop waits
// listenRetryMin, each failed attempt doubles it up to listenRetryMax, and
// a successful connection starts over from listenRetryMin.
const (
	listenRetryMin = 100 * time.Millisecond
	listenRetryMax = 5 * time.Second
)

// subscription is one waiter: its channel closes at the first notification
// for one of its keys (a task id, an action), or for any key when it has
// none, or when the listener (re)connects.
type subscription struct {
	channel string
	keys    []string
	ch      chan struct{}
	// claimer marks a ClaimTasksWait waiter: a queued notification wakes
	// one claimer (see notified), not all of them.
	claimer bool
	// wokenBy is the key of the notification that woke it ("" when woken
	// for every key); set under the listener's mu.
	wokenBy string
}

// listener holds one dedicated connection that LISTENs for the store's
// notifications and wakes only the waiters a notification concerns: the
// tailers of the tasks named in a message wake-up, the claimers of the
// queued task's action (and claimers of every action). Waiters always also
// poll, so a lost connection, a pooler that drops LISTEN, or a
// notification sent while reconnecting costs at most one poll interval,
// never a missed task.
type listener struct {
	pool    *pgxpool.Config // connection settings and the pool's connect hooks
	logger  *slog.Logger
	enabled bool
	// retried, when set (tests), sees each reconnect delay before it is slept.
	retried func(time.Duration)

	mu      sync.Mutex
	started bool
	byKey   map[string]map[string]map[*subscription]struct{} // channel → key → waiters
	anyKey  map[string]map[*subscription]struct{}            // channel → waiters for every key
	cancel  context.CancelFunc
	done    chan struct{}
}

func newListener(pool *pgxpool.Config, logger *slog.Logger, enabled bool) *listener {
	return &listener{pool: pool, logger: logger, enabled: enabled,
		byKey:  map[string]map[string]map[*subscription]struct{}{},
		anyKey: map[string]map[*subscription]struct{}{}}
}

// subscribe registers a waiter for notifications on channel concerning any
// of keys (every notification when keys is empty), starting the listening
// connection on first use. Subscribe before checking the table, then wait
// on the subscription's channel: a notification that arrives in between is
// not missed. Always unsubscribe afterwards.
func (l *listener) subscribe(channel string, keys ...string) *subscription {
	return l.subscribeSub(&subscription{channel: channel, keys: keys, ch: make(chan struct{})})
}

// subscribeClaimer subscribes a claimer (ClaimTasksWait) to queued
// notifications for actions: see notified for how claimers are woken.
func (l *listener) subscribeClaimer(actions ...string) *subscription {
	return l.subscribeSub(&subscription{channel: channelTaskQueued, keys: actions, ch: make(chan struct{}), claimer: true})
}

func (l *listener) subscribeSub(sub *subscription) *subscription {
	channel, keys := sub.channel, sub.keys
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.enabled && !l.started {
		l.started = true
		ctx, cancel := context.WithCancel(context.Background())
		l.cancel, l.done = cancel, make(chan struct{})
		go l.run(ctx)
	}
	if len(keys) == 0 {
		if l.anyKey[channel] == nil {
			l.anyKey[channel] = map[*subscription]struct{}{}
		}
		l.anyKey[channel][sub] = struct{}{}
		return sub
	}
	if l.byKey[channel] == nil {
		l.byKey[channel] = map[string]map[*subscription]struct{}{}
	}
	for _, k := range keys {
		if l.byKey[channel][k] == nil {
			l.byKey[channel][k] = map[*subscription]struct{}{}
		}
		l.byKey[channel][k][sub] = struct{}{}
	}
	return sub
}

// unsubscribe forgets a waiter (woken or not).
func (l *listener) unsubscribe(sub *subscription) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.forget(sub)
}

// forget removes sub from the indexes; l.mu is held.
func (l *listener) forget(sub *subscription) {
	if len(sub.keys) == 0 {
		delete(l.anyKey[sub.channel], sub)
		return
	}
	for _, k := range sub.keys {
		if m := l.byKey[sub.channel][k]; m != nil {
			delete(m, sub)
			if len(m) == 0 {
				delete(l.byKey[sub.channel], k)
			}
		}
	}
}

// wakeLocked closes a waiter's channel and forgets it; l.mu is held.
func (l *listener) wakeLocked(sub *subscription) {
	close(sub.ch)
	l.forget(sub)
}

// notified wakes the waiters a notification concerns. An empty payload
// (an operator's NOTIFY, an older store) wakes every waiter of the channel.
//
// A queued notification (payload: the action) wakes every WaitForQueued
// waiter of that action but only ONE claimer (ClaimTasksWait) of it: the
// others would only race it for the same rows (on a small machine, eight
// claim statements for one task slow the one that wins). Nothing is lost:
// a woken claimer that returns without having claimed after its wake-up,
// or that claimed as many tasks as it asked for (there may be more), hands
// the wake-up on to another claimer of the action (passOn).
func (l *listener) notified(channel, payload string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if payload == "" {
		l.wakeChannelLocked(channel)
		return
	}
	if channel == channelTaskQueued {
		l.wakeClaimersLocked(payload, true)
		return
	}
	for sub := range l.anyKey[channel] {
		l.wakeLocked(sub)
	}
	for _, k := range strings.Split(payload, ",") {
		for sub := range l.byKey[channel][k] {
			l.wakeLocked(sub)
		}
	}
}

// wakeClaimersLocked wakes one claimer waiting for tasks of action (and,
// when others is set, every other waiter for it); l.mu is held.
func (l *listener) wakeClaimersLocked(action string, others bool) {
	var one *subscription
	for _, subs := range []map[*subscription]struct{}{l.byKey[channelTaskQueued][action], l.anyKey[channelTaskQueued]} {
		for sub := range subs {
			switch {
			case !sub.claimer:
				if others {
					sub.wokenBy = action
					l.wakeLocked(sub)
				}
			case one == nil:
				one = sub
			}
		}
	}
	if one != nil {
		one.wokenBy = action
		l.wakeLocked(one)
	}
}

// passOn hands queued wake-ups on to one more claimer each: for the action
// that woke sub (when it was woken for one action) and for each of actions.
// See notified.
func (l *listener) passOn(sub *subscription, actions ...string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	seen := map[string]bool{}
	if sub != nil && sub.wokenBy != "" {
		seen[sub.wokenBy] = true
		l.wakeClaimersLocked(sub.wokenBy, false)
	}
	for _, a := range actions {
		if !seen[a] {
			seen[a] = true
			l.wakeClaimersLocked(a, false)
		}
	}
}

// woken reports whether sub has been woken.
func woken(sub *subscription) bool {
	select {
	case <-sub.ch:
		return true
	default:
		return false
	}
}

// wakeAll wakes every waiter of every channel (after a (re)connection:
// anything may have happened while not listening).
func (l *listener) wakeAll() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.wakeChannelLocked(channelTaskQueued)
	l.wakeChannelLocked(channelMessage)
}

func (l *listener) wakeChannelLocked(channel string) {
	for sub := range l.anyKey[channel] {
		l.wakeLocked(sub)
	}
	for _, subs := range l.byKey[channel] {
		for sub := range subs {
			l.wakeLocked(sub)
		}
	}
}

// run keeps a LISTEN connection open until ctx ends, reconnecting with a
// capped backoff that starts over after every successful connection.
func (l *listener) run(ctx context.Context) {
	defer close(l.done)
	backoff := listenRetryMin
	for ctx.Err() == nil {
		connected, err := l.listenOnce(ctx)
		if ctx.Err() != nil {
			return
		}
		if connected {
			backoff = listenRetryMin // this drop is a new one, not the same outage
		}
		l.logger.WarnContext(ctx, "statestore: notification listener lost; polling until it reconnects",
			"error", err, "retry_in", backoff)
		if l.retried != nil {
			l.retried(backoff)
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, listenRetryMax)
	}
}

func (l *listener) connect(ctx context.Context) (*pgx.Conn, error) {
	return connectLikePool(ctx, l.pool)
}

// connectLikePool opens a connection of the store's own (the listener's,
// the notifier's) the way the pool opens its connections: through the
// pool's BeforeConnect hook (rotated credentials, discovered endpoints) and
// AfterConnect hook.
func connectLikePool(ctx context.Context, pool *pgxpool.Config) (*pgx.Conn, error) {
	cfg := pool.ConnConfig.Copy()
	if pool.BeforeConnect != nil {
		if err := pool.BeforeConnect(ctx, cfg); err != nil {
			return nil, err
		}
	}
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return nil, err
	}
	if pool.AfterConnect != nil {
		if err := pool.AfterConnect(ctx, conn); err != nil {
			_ = conn.Close(context.WithoutCancel(ctx))
			return nil, err
		}
	}
	return conn, nil
}

// listenOnce connects, listens and dispatches notifications until the
// connection fails or ctx ends. connected reports whether it got as far as
// listening.
func (l *listener) listenOnce(ctx context.Context) (connected bool, err error) {
	conn, err := l.connect(ctx)
	if err != nil {
		return false, err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	q := db.New()
	if err := q.ListenTaskQueued(ctx, conn); err != nil {
		return false, err
	}
	if err := q.ListenMessage(ctx, conn); err != nil {
		return false, err
	}
	// Anything may have happened while not listening: wake everyone once.
	l.wakeAll()
	for {
		n, err := conn.WaitForNotification(ctx)
		if err != nil {
			return true, err
		}
		l.notified(n.Channel, n.Payload)
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

// wait blocks until ch closes, d passes, or ctx ends.
func wait(ctx context.Context, ch <-chan struct{}, d time.Duration) error {
	t := time.NewTimer(d)
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

// notifyMinInterval spaces the notifier's transactions: after sending, it
// gathers for at least this long before sending again, so under a stream
// of appends a Store sends at most 50 notifying transactions a second,
// each carrying every task appended to meanwhile. The first append after a
// quiet spell is sent at once.
const notifyMinInterval = 20 * time.Millisecond

// maxNotifyPayload keeps a batched payload under PostgreSQL's 8000-byte
// limit for one notification.
const maxNotifyPayload = 7900

// notifier sends the message wake-ups of one Store's appends after they
// commit. Appends only record the task id and nudge the notifier's
// goroutine, which sends everything recorded so far in one small
// transaction of its own (NotifyMessages, committed asynchronously) on a
// connection of its own (opened like the pool's, on first use; it never
// takes a pool connection from the appenders), so at most one notifying
// transaction per Store is in flight and appends under load share it. The
// appending transactions themselves never notify and never take
// PostgreSQL's commit-time notify lock.
type notifier struct {
	pool    *pgxpool.Config
	logger  *slog.Logger
	enabled bool

	mu      sync.Mutex
	pending map[uuid.UUID]struct{}
	started bool
	closed  bool
	kick    chan struct{}
	done    chan struct{}
}

func newNotifier(pool *pgxpool.Config, logger *slog.Logger, enabled bool) *notifier {
	return &notifier{pool: pool, logger: logger, enabled: enabled,
		pending: map[uuid.UUID]struct{}{}, kick: make(chan struct{}, 1)}
}

// messages records that tasks got messages (committed) and nudges the
// sender; it never blocks on the database.
func (n *notifier) messages(ids ...uuid.UUID) {
	n.mu.Lock()
	if !n.enabled || n.closed {
		n.mu.Unlock()
		return
	}
	for _, id := range ids {
		n.pending[id] = struct{}{}
	}
	if !n.started {
		n.started = true
		n.done = make(chan struct{})
		go n.run()
	}
	select { // under mu: close cannot close kick in between
	case n.kick <- struct{}{}:
	default: // a nudge is already waiting: the sender takes our ids with it
	}
	n.mu.Unlock()
}

// take empties the pending set into payloads of at most maxNotifyPayload
// bytes each.
func (n *notifier) take() []string {
	n.mu.Lock()
	defer n.mu.Unlock()
	if len(n.pending) == 0 {
		return nil
	}
	var payloads []string
	var b strings.Builder
	for id := range n.pending {
		s := id.String()
		if b.Len() > 0 && b.Len()+1+len(s) > maxNotifyPayload {
			payloads = append(payloads, b.String())
			b.Reset()
		}
		if b.Len() > 0 {
			b.WriteByte(',')
		}
		b.WriteString(s)
	}
	payloads = append(payloads, b.String())
	clear(n.pending)
	return payloads
}

func (n *notifier) run() {
	defer close(n.done)
	var conn *pgx.Conn
	defer func() {
		if conn != nil {
			_ = conn.Close(context.Background())
		}
	}()
	q := db.New()
	var last time.Time
	for range n.kick {
		if wait := notifyMinInterval - time.Since(last); wait > 0 {
			time.Sleep(wait) // appends meanwhile join this batch
		}
		last = time.Now()
		payloads := n.take()
		if len(payloads) == 0 {
			continue
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		var err error
		if conn == nil {
			conn, err = connectLikePool(ctx, n.pool)
		}
		if err == nil {
			if err = q.NotifyMessages(ctx, conn, payloads); err != nil {
				_ = conn.Close(ctx)
				conn = nil // reconnect for the next batch
			}
		}
		if err != nil {
			// Tailers poll: a lost wake-up delays them, loses nothing.
			n.logger.WarnContext(ctx, "statestore: message wake-up not sent; tailers will poll", "error", err)
		}
		cancel()
	}
}

// close sends what is pending and stops the sender.
func (n *notifier) close() {
	n.mu.Lock()
	if n.closed {
		n.mu.Unlock()
		return
	}
	n.closed = true
	started, done := n.started, n.done
	close(n.kick) // the sender drains what is pending, then ends
	n.mu.Unlock()
	if started {
		<-done
	}
}
