package fetch

import (
	"container/heap"
	"container/list"
	"sync"
	"time"
)

// etagRetain is how many TTLs an entry with an ETag is kept after it was
// stored, for a conditional request (If-None-Match) once it has expired.
const etagRetain = 10

// cache keeps fetched documents for a TTL, keyed by Resolver.cacheKey (URI
// and credentials, hashed). An expired entry with an ETag is kept for
// revalidation until etagRetain × TTL after it was stored; one without is
// dropped once expired. The cache holds at most maxEntries entries and
// maxBytes bytes of documents, evicting the least recently used first.
//
// Every operation costs O(log n): expired entries are found through a heap
// ordered by the time they are to be dropped, never by scanning the cache.
type cache struct {
	mu         sync.Mutex
	m          map[string]*cacheEntry
	lru        list.List // of *cacheEntry; front: most recently used
	drops      dropHeap  // by dropAt: the next entry to drop on top
	bytes      int64     // sum of len(res.Data) over m
	maxEntries int
	maxBytes   int64
}

type cacheEntry struct {
	key     string
	res     *Result // never handed out: callers get a copy of Data
	etag    string
	expires time.Time // fresh until then
	dropAt  time.Time // forgotten then (expires, or later with an ETag)
	elem    *list.Element
	index   int // in drops
}

func newCache(maxEntries int, maxBytes int64) *cache {
	return &cache{m: map[string]*cacheEntry{}, maxEntries: maxEntries, maxBytes: maxBytes}
}

// get returns the entry and whether it is still fresh.
func (c *cache) get(key string) (*Result, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.m[key]
	if !ok || time.Now().After(e.expires) {
		return nil, false
	}
	c.lru.MoveToFront(e.elem)
	return e.res, true
}

// stale returns an entry (fresh or expired) with its ETag, for a
// conditional request; entries without an ETag are dropped once expired.
func (c *cache) stale(key string) (*Result, string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.m[key]
	if !ok {
		return nil, ""
	}
	if time.Now().After(e.dropAt) {
		c.remove(e)
		return nil, ""
	}
	if e.etag == "" {
		return nil, ""
	}
	c.lru.MoveToFront(e.elem)
	return e.res, e.etag
}

// put stores res (which the cache then owns) under key, drops the entries
// whose time is up, and evicts the least recently used ones while the
// cache is over its bounds. A document larger than the byte bound is not
// stored.
func (c *cache) put(key string, res *Result, etag string, ttl time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := time.Now()
	if old, ok := c.m[key]; ok {
		c.remove(old)
	}
	for len(c.drops) > 0 && now.After(c.drops[0].dropAt) {
		c.remove(c.drops[0])
	}
	size := int64(len(res.Data))
	if size > c.maxBytes {
		return
	}
	e := &cacheEntry{key: key, res: res, etag: etag, expires: now.Add(ttl), dropAt: now.Add(ttl)}
	if etag != "" {
		e.dropAt = now.Add(retainFor(ttl))
	}
	for len(c.m) > 0 && (len(c.m)+1 > c.maxEntries || c.bytes+size > c.maxBytes) {
		c.remove(c.lru.Back().Value.(*cacheEntry))
	}
	e.elem = c.lru.PushFront(e)
	heap.Push(&c.drops, e)
	c.m[key] = e
	c.bytes += size
}

// retainFor is etagRetain × ttl, saturating.
func retainFor(ttl time.Duration) time.Duration {
	if ttl > (1<<63-1)/etagRetain {
		return 1<<63 - 1
	}
	return etagRetain * ttl
}

// remove forgets e; c.mu is held.
func (c *cache) remove(e *cacheEntry) {
	delete(c.m, e.key)
	c.lru.Remove(e.elem)
	heap.Remove(&c.drops, e.index)
	c.bytes -= int64(len(e.res.Data))
}

func (c *cache) clear() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.m = map[string]*cacheEntry{}
	c.lru.Init()
	c.drops = nil
	c.bytes = 0
}

// dropHeap orders entries by dropAt (container/heap).
type dropHeap []*cacheEntry

func (h dropHeap) Len() int           { return len(h) }
func (h dropHeap) Less(i, j int) bool { return h[i].dropAt.Before(h[j].dropAt) }
func (h dropHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].index, h[j].index = i, j
}

// Push implements heap.Interface.
func (h *dropHeap) Push(x any) {
	e := x.(*cacheEntry)
	e.index = len(*h)
	*h = append(*h, e)
}

// Pop implements heap.Interface.
func (h *dropHeap) Pop() any {
	old := *h
	e := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	return e
}
