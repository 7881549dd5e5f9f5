//go:build linux

package statestore_test

// The soak's leadership faults (issue 13), on top of the leader kills the
// soak itself makes: each process's elector goes through its own fault proxy,
// and its leader
//
//   - partitions that proxy now and then (bytes and FIN lost, the server-side
//     socket stays open): only the server's SessionTimeout frees the lock;
//   - runs long fenced calls (a fenced transaction that sleeps 10 × the check
//     interval) and must keep leading through them;
//   - claims again while leading: the same term must come back;
//
// and a bystander elector in each process abdicates the term of whoever
// leads: it must get ErrNotLeader and change nothing. Violations are counted
// in soak_leader_fault and must be zero.

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/drydock-go/statemgmt/statestore"
)

const soakLeaderSchema = `
CREATE TABLE soak_leader_fault (proc text PRIMARY KEY, partitions bigint NOT NULL, long_fenced bigint NOT NULL,
	leader_claims bigint NOT NULL, claim_violations bigint NOT NULL,
	foreign_abdications bigint NOT NULL, abdication_violations bigint NOT NULL);
`

const soakCheckInterval = 100 * time.Millisecond

type soakLeaderStats struct {
	partitions, longFenced, leaderClaims, claimViolations, foreignAbdications, abdicationViolations atomic.Int64
}

// soakLeader runs this process's elector (through its own fault proxy) and
// bystander until ctx ends; the leader requeues stale claims and records its
// interval with fenced writes. It returns the fault counts when done.
func soakLeader(ctx context.Context, t *testing.T, wg *sync.WaitGroup, url string, direct *pgxpool.Pool) *soakLeaderStats {
	stats := &soakLeaderStats{}
	proxy, via := proxyFor(t, url)
	el, err := statestore.NewElector(statestore.ElectorConfig{ConnString: via, CheckInterval: soakCheckInterval,
		SessionTimeout: 10 * soakCheckInterval, Logger: quietLogger})
	if err != nil {
		t.Fatal(err)
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		_ = el.Run(ctx, func(ctx context.Context, term int64) error {
			leader := statestore.New(direct, statestore.Options{DisableListen: true}).AsLeader(term)
			fenced := func(sql string) error {
				return leader.InTx(ctx, func(ctx context.Context, tx *statestore.Store) error {
					if err := tx.CheckLeader(ctx, term); err != nil {
						return err
					}
					return tx.ExecForTest(ctx, sql, term)
				})
			}
			if err := fenced("INSERT INTO soak_interval VALUES ($1, clock_timestamp(), clock_timestamp())"); err != nil {
				return err
			}
			// Now and then this leader's network is cut without a FIN; always
			// until one cut has happened in this process, so every soak run
			// exercises it (at 1 in 4 alone, about 1 run in 8 had none).
			if rand.IntN(4) == 0 || stats.partitions.Load() == 0 {
				partition := time.AfterFunc(time.Duration(200+rand.IntN(800))*time.Millisecond, func() {
					proxy.SetPartition(true)
					stats.partitions.Add(1)
					time.Sleep(15 * soakCheckInterval) // past the server's SessionTimeout
					proxy.SetPartition(false)
					proxy.CutAll()
				})
				defer partition.Stop()
			}
			for ctx.Err() == nil {
				if _, err := leader.RequeueStaleTasks(ctx, time.Now().Add(-soakStaleClaimCutoff)); errors.Is(err, statestore.ErrNotLeader) {
					return err
				}
				if err := fenced("UPDATE soak_interval SET last_write_at = clock_timestamp() WHERE term = $1"); err != nil {
					return err
				}
				switch rand.IntN(20) {
				case 0: // a long fenced call: 10 check intervals inside the fenced transaction
					err := fenced("SELECT pg_sleep(1) WHERE $1::bigint > 0")
					if err == nil {
						stats.longFenced.Add(1)
					}
				case 1: // claim again while leading: nothing may change
					got, ok, err := el.Claim(ctx)
					stats.leaderClaims.Add(1)
					if ctx.Err() == nil && (err != nil || !ok || got != term) {
						stats.claimViolations.Add(1)
						t.Errorf("Claim by the leader of term %d = %d, %v, %v", term, got, ok, err)
					}
				}
				time.Sleep(50 * time.Millisecond)
			}
			return nil
		})
	}()

	// The bystander: abdicates whoever leads.
	bystander, err := statestore.NewElector(statestore.ElectorConfig{ConnString: url, Logger: quietLogger})
	if err != nil {
		t.Fatal(err)
	}
	store := statestore.New(direct, statestore.Options{DisableListen: true})
	wg.Add(1)
	go func() {
		defer wg.Done()
		defer bystander.Close()
		for {
			select {
			case <-ctx.Done():
				return
			case <-time.After(time.Duration(100+rand.IntN(400)) * time.Millisecond):
			}
			if own, ok := bystander.Leading(); ok {
				_ = bystander.Abdicate(ctx, own)
				continue
			}
			l, err := store.Leader(ctx)
			if err != nil || !l.LockHeld || l.ResignedAt != nil {
				continue
			}
			if rand.IntN(2) == 0 {
				// Connect (and maybe win, if the leader just went): a
				// bystander that leads gives its own term up again.
				if term, ok, err := bystander.Claim(ctx); err == nil && ok {
					_ = bystander.Abdicate(ctx, term)
					continue
				}
			}
			err = bystander.Abdicate(ctx, l.Term)
			stats.foreignAbdications.Add(1)
			if !errors.Is(err, statestore.ErrNotLeader) {
				stats.abdicationViolations.Add(1)
				t.Errorf("Abdicate(%d) by a bystander = %v, want ErrNotLeader", l.Term, err)
			}
		}
	}()
	return stats
}

// save records this process's fault counts.
func (st *soakLeaderStats) save(t *testing.T, direct *pgxpool.Pool, proc string) {
	if _, err := direct.Exec(context.Background(), "INSERT INTO soak_leader_fault VALUES ($1, $2, $3, $4, $5, $6, $7)", proc,
		st.partitions.Load(), st.longFenced.Load(), st.leaderClaims.Load(), st.claimViolations.Load(),
		st.foreignAbdications.Load(), st.abdicationViolations.Load()); err != nil {
		t.Fatal(err)
	}
}

// checkSoakLeaderFaults asserts the leadership faults were made and broke
// nothing, and describes them.
func checkSoakLeaderFaults(t *testing.T, pool *pgxpool.Pool) string {
	t.Helper()
	var partitions, longFenced, claims, claimBad, abdications, abdicationBad int64
	if err := pool.QueryRow(context.Background(), `SELECT coalesce(sum(partitions), 0), coalesce(sum(long_fenced), 0),
		coalesce(sum(leader_claims), 0), coalesce(sum(claim_violations), 0),
		coalesce(sum(foreign_abdications), 0), coalesce(sum(abdication_violations), 0) FROM soak_leader_fault`).
		Scan(&partitions, &longFenced, &claims, &claimBad, &abdications, &abdicationBad); err != nil {
		t.Fatal(err)
	}
	if claimBad != 0 {
		t.Errorf("%d of %d claims by the leader did not return its own term", claimBad, claims)
	}
	if abdicationBad != 0 {
		t.Errorf("%d of %d abdications by non-leaders were not refused", abdicationBad, abdications)
	}
	if partitions == 0 || abdications == 0 {
		t.Errorf("leadership faults not exercised: %d partitions, %d foreign abdications", partitions, abdications)
	}
	return fmt.Sprintf("leadership faults: %d partitions losing the FIN, %d long fenced calls, "+
		"%d repeated claims by the leader (same term each time), %d abdications by non-leaders (all refused)",
		partitions, longFenced, claims, abdications)
}
