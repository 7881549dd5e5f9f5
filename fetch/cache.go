package fetch

import (
	"sync"
	"time"
)

// cache keeps fetched documents for a TTL, keyed by URI without
// credentials. An expired entry with an ETag is kept for revalidation.
type cache struct {
	mu sync.Mutex
	m  map[string]cacheEntry
}

type cacheEntry struct {
	res     *Result
	etag    string
	expires time.Time
}

func newCache() *cache { return &cache{m: map[string]cacheEntry{}} }

// get returns the entry and whether it is still fresh.
func (c *cache) get(key string) (*Result, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.m[key]
	if !ok || time.Now().After(e.expires) {
		return nil, false
	}
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
	if e.etag == "" {
		if time.Now().After(e.expires) {
			delete(c.m, key)
		}
		return nil, ""
	}
	return e.res, e.etag
}

func (c *cache) put(key string, res *Result, etag string, ttl time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := time.Now()
	for k, e := range c.m { // keep the map from growing without bound
		if e.etag == "" && now.After(e.expires) {
			delete(c.m, k)
		}
	}
	c.m[key] = cacheEntry{res: res, etag: etag, expires: now.Add(ttl)}
}

func (c *cache) clear() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.m = map[string]cacheEntry{}
}
