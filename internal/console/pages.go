package console

import (
	"bytes"
	"errors"
	"fmt"
	"html/template"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"sort"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"

	"github.com/drydock-go/statemgmt/statestore"
)

// allStatuses are the task statuses the filter offers, in lifecycle order.
var allStatuses = []statestore.TaskStatus{statestore.StatusRequested, statestore.StatusQueued,
	statestore.StatusRunning, statestore.StatusTerminating, statestore.StatusTerminated, statestore.StatusComplete}

// actionPattern is the store's rule for action names (tasks_action_check).
var actionPattern = regexp.MustCompile(`^[a-z][a-z0-9_]{0,63}$`)

// maxShown is how much of one long stored value (a build-data element, a
// JSON column) a page shows: bytes, or characters of a build-data element.
const maxShown = 4096

// maxGenerators is how many generators' newest build data a node's page shows.
const maxGenerators = 100

// layout is the frame of every page; each page file defines "content".
const layout = "layout.html"

func parsePages(prefix string) (map[string]*template.Template, error) {
	funcs := template.FuncMap{
		"prefix":   func() string { return prefix },
		"time":     fmtTime,
		"timep":    func(t *time.Time) string { return fmtTimePtr(t) },
		"short":    func(id uuid.UUID) string { return shortID(id.String()) },
		"shown":    shown,
		"json":     func(b []byte) string { return shown(string(b)) },
		"join":     strings.Join,
		"has":      func(set []string, v statestore.TaskStatus) bool { return slices.Contains(set, string(v)) },
		"datasize": datasize,
	}
	pages := map[string]*template.Template{}
	for _, name := range []string{"tasks.html", "task.html", "leadership.html", "nodes.html", "node.html", "error.html"} {
		t, err := template.New(layout).Funcs(funcs).ParseFS(templateFS, "templates/"+layout, "templates/"+name)
		if err != nil {
			return nil, fmt.Errorf("console: parse template %s: %w", name, err)
		}
		pages[name] = t
	}
	return pages, nil
}

// shortID abbreviates a task id for tables: UUIDv7s created together share
// their leading (time) digits, so the end is what tells them apart.
func shortID(id string) string { return "…" + id[24:] }

func fmtTime(t time.Time) string {
	if t.IsZero() {
		return "—"
	}
	return t.UTC().Format("2006-01-02 15:04:05.000Z")
}

func fmtTimePtr(t *time.Time) string {
	if t == nil {
		return "—"
	}
	return fmtTime(*t)
}

// shown cuts a long value for display, on a character boundary, saying so.
func shown(s string) string {
	if len(s) <= maxShown {
		return s
	}
	cut := maxShown
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + fmt.Sprintf("… (%d more bytes)", len(s)-cut)
}

func datasize(n int64) string {
	switch {
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}

// frame is what layout.html needs of every page.
type frame struct {
	Title string
	Nav   string // "tasks", "leadership" or "nodes"
}

// render executes a page into a buffer first, so a failing template yields
// a clean 500 instead of half a page.
func (c *console) render(w http.ResponseWriter, r *http.Request, status int, page string, data any) {
	var buf bytes.Buffer
	if err := c.pages[page].Execute(&buf, data); err != nil {
		c.logger.ErrorContext(r.Context(), "console: render", "page", page, "err", err)
		http.Error(w, "internal error rendering the page", http.StatusInternalServerError)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	if r.Method == http.MethodHead {
		return
	}
	if _, err := w.Write(buf.Bytes()); err != nil {
		c.logger.DebugContext(r.Context(), "console: write page", "page", page, "err", err) // the client went away
	}
}

type errorData struct {
	frame
	Status  int
	Message string
}

// fail renders an error page; message must be safe to show (never a
// database error's text: those are logged by storeFail instead).
func (c *console) fail(w http.ResponseWriter, r *http.Request, status int, message string) {
	c.render(w, r, status, "error.html", errorData{frame{Title: http.StatusText(status)}, status, message})
}

// storeFail maps a store error to a page: bad input 400 (the store's field
// and problem, which never repeat the value), not found 404, else 500 with
// the cause logged only.
func (c *console) storeFail(w http.ResponseWriter, r *http.Request, what string, err error) {
	var bad *statestore.InvalidInputError
	switch {
	case errors.As(err, &bad):
		c.fail(w, r, http.StatusBadRequest, fmt.Sprintf("%s: invalid %s: %s", what, bad.Field, bad.Problem))
	case errors.Is(err, statestore.ErrNotFound):
		c.fail(w, r, http.StatusNotFound, what+": not found")
	case r.Context().Err() != nil:
		// The client went away; nobody reads the page.
	default:
		c.logger.ErrorContext(r.Context(), "console: "+what, "err", err)
		c.fail(w, r, http.StatusInternalServerError, what+": the store failed (see the server's log)")
	}
}

// badCursor answers a 400 naming the URL parameter param when err is the
// store's rejection of the cursor it was given as field, and reports
// whether it did: the store's own name for it (filter.Cursor) means
// nothing to someone looking at the URL.
func (c *console) badCursor(w http.ResponseWriter, r *http.Request, err error, field, param string) bool {
	var bad *statestore.InvalidInputError
	if !errors.As(err, &bad) || bad.Field != field {
		return false
	}
	c.fail(w, r, http.StatusBadRequest, param+": not a cursor of this list (follow a Next link, or start from the first page)")
	return true
}

// --- tasks list ---

type tasksData struct {
	frame
	Statuses   []statestore.TaskStatus
	Checked    []string
	Actions    string
	Tasks      []*statestore.Task
	Next       string // URL of the next page, "" on the last
	First      string // URL of the first page with these filters, "" when on it
	Filtered   bool
	PageSize   int
	PageNumber string
}

func (c *console) tasksPage(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	f := statestore.TaskFilter{Limit: c.opts.PageSize, Cursor: q.Get("cursor")}
	var checked []string
	for _, s := range q["status"] {
		if s == "" {
			continue
		}
		if !slices.Contains(allStatuses, statestore.TaskStatus(s)) {
			c.fail(w, r, http.StatusBadRequest, "status: must be one of requested, queued, running, terminating, terminated, complete")
			return
		}
		if !slices.Contains(checked, s) {
			checked = append(checked, s)
			f.Statuses = append(f.Statuses, statestore.TaskStatus(s))
		}
	}
	var actions []string
	for _, field := range q["action"] {
		for _, a := range strings.FieldsFunc(field, func(r rune) bool { return r == ',' || r == ' ' }) {
			if !actionPattern.MatchString(a) {
				c.fail(w, r, http.StatusBadRequest, "action: each must be a lowercase letter then up to 63 lowercase letters, digits or '_'")
				return
			}
			if !slices.Contains(actions, a) {
				actions = append(actions, a)
			}
		}
	}
	f.Actions = actions
	page, err := c.store.ListTasks(r.Context(), f)
	if err != nil {
		if !c.badCursor(w, r, err, "filter.Cursor", "cursor") {
			c.storeFail(w, r, "list tasks", err)
		}
		return
	}
	filters := url.Values{}
	for _, s := range checked {
		filters.Add("status", s)
	}
	if len(actions) > 0 {
		filters.Set("action", strings.Join(actions, ","))
	}
	d := tasksData{frame: frame{Title: "Tasks", Nav: "tasks"}, Statuses: allStatuses, Checked: checked,
		Actions: strings.Join(actions, ","), Tasks: page.Tasks, Filtered: len(filters) > 0, PageSize: c.opts.PageSize}
	if page.Next != "" {
		next := url.Values{}
		for k, v := range filters {
			next[k] = v
		}
		next.Set("cursor", page.Next)
		d.Next = c.opts.Prefix + "/tasks?" + next.Encode()
	}
	if f.Cursor != "" {
		d.First = c.opts.Prefix + "/tasks"
		if len(filters) > 0 {
			d.First += "?" + filters.Encode()
		}
	}
	c.render(w, r, http.StatusOK, "tasks.html", d)
}

// --- one task: fields, tree, messages ---

// treeNode is one task of the tree view, with the strings the template
// shows computed once (a tree of thousands renders noticeably faster than
// with a template function call per task).
type treeNode struct {
	ID, Href, Short        string
	Action, Status, Result string
	Messages               int64
	Children               []*treeNode
	Current                bool
}

type taskData struct {
	frame
	Task      *statestore.Task
	Ancestors []statestore.TreeTask // top-level task first
	Tree      *treeNode
	TreeSize  int
	Truncated bool
	TreeLimit int
	Messages  []statestore.ResultMessage
	Earlier   int64 // messages before the ones shown
	After     int64 // the stream starts after this sequence
	StreamURL string
}

func (c *console) taskPage(w http.ResponseWriter, r *http.Request) {
	id, err := uuid.Parse(r.PathValue("id"))
	if err != nil {
		c.fail(w, r, http.StatusBadRequest, "task id: not a UUID")
		return
	}
	ctx := r.Context()
	t, err := c.store.GetTaskHeader(ctx, id)
	if err != nil {
		c.storeFail(w, r, "read task", err)
		return
	}
	// The page shows the path down to the task and the task's own subtree.
	ancestors, err := c.store.TaskAncestors(ctx, id)
	if err != nil {
		c.storeFail(w, r, "read task ancestors", err)
		return
	}
	tree, err := c.store.ReadTaskTree(ctx, id, c.opts.TreeLimit)
	if err != nil {
		c.storeFail(w, r, "read task tree", err)
		return
	}
	after := max(0, t.LastMessageSeq-int64(c.opts.RecentMessages))
	msgs, err := c.store.Messages(ctx, id, after, c.opts.RecentMessages)
	if err != nil {
		c.storeFail(w, r, "read messages", err)
		return
	}
	last := after
	if len(msgs) > 0 {
		last = msgs[len(msgs)-1].Sequence
	}
	d := taskData{frame: frame{Title: "Task " + id.String(), Nav: "tasks"}, Task: t, Ancestors: ancestors, Tree: buildTree(c.opts.Prefix, tree, id),
		TreeSize: len(tree.Tasks), Truncated: tree.Truncated, TreeLimit: c.opts.TreeLimit, Messages: msgs,
		Earlier: after, After: last,
		StreamURL: c.opts.Prefix + "/tasks/" + id.String() + "/events?after=" + fmt.Sprint(last)}
	c.render(w, r, http.StatusOK, "task.html", d)
}

// buildTree links the breadth-first rows into nodes; children keep the
// rows' order (oldest first).
func buildTree(prefix string, tree *statestore.TaskTree, root uuid.UUID) *treeNode {
	nodes := make(map[uuid.UUID]*treeNode, len(tree.Tasks))
	var top *treeNode
	for _, tt := range tree.Tasks {
		id := tt.ID.String()
		n := &treeNode{ID: id, Href: prefix + "/tasks/" + id, Short: shortID(id), Action: tt.Action,
			Status: string(tt.Status), Result: string(tt.ResultStatus), Messages: tt.LastMessageSeq, Current: tt.ID == root}
		nodes[tt.ID] = n
		if tt.Depth == 0 {
			top = n
			continue
		}
		if tt.ParentID != nil {
			if p := nodes[*tt.ParentID]; p != nil {
				p.Children = append(p.Children, n)
			}
		}
	}
	return top
}

// --- leadership ---

type leadershipData struct {
	frame
	Leader  *statestore.Leader
	History []statestore.LeaderTerm
}

func (c *console) leadershipPage(w http.ResponseWriter, r *http.Request) {
	d := leadershipData{frame: frame{Title: "Leadership", Nav: "leadership"}}
	var err error
	d.Leader, err = c.store.Leader(r.Context())
	if err != nil && !errors.Is(err, statestore.ErrNotFound) { // not found: nobody ever led
		c.storeFail(w, r, "read leader", err)
		return
	}
	if d.History, err = c.store.LeaderHistory(r.Context(), 100); err != nil {
		c.storeFail(w, r, "read leadership history", err)
		return
	}
	c.render(w, r, http.StatusOK, "leadership.html", d)
}

// --- nodes ---

type nodesData struct {
	frame
	Contexts []statestore.BootActionContext
	NextBoot string
	Data     []statestore.BuildData
	NextData string
}

func (c *console) nodesPage(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	d := nodesData{frame: frame{Title: "Nodes", Nav: "nodes"}}
	limit := c.opts.PageSize
	ctxs, err := c.store.BootActionContexts(r.Context(), q.Get("after"), limit+1)
	if err != nil {
		c.storeFail(w, r, "list boot action contexts", err)
		return
	}
	if len(ctxs) > limit {
		ctxs = ctxs[:limit]
		v := url.Values{"after": {ctxs[limit-1].NodeName}}
		if dc := q.Get("data"); dc != "" {
			v.Set("data", dc)
		}
		d.NextBoot = c.opts.Prefix + "/nodes?" + v.Encode()
	}
	d.Contexts = ctxs
	data, err := c.store.BuildData(r.Context(), statestore.BuildDataQuery{LatestAllNodes: true, Limit: limit, Cursor: q.Get("data")})
	if err != nil {
		if !c.badCursor(w, r, err, "query.Cursor", "data") {
			c.storeFail(w, r, "list build data", err)
		}
		return
	}
	if data.Next != "" {
		v := url.Values{"data": {data.Next}}
		if a := q.Get("after"); a != "" {
			v.Set("after", a)
		}
		d.NextData = c.opts.Prefix + "/nodes?" + v.Encode()
	}
	d.Data = data.Records
	c.render(w, r, http.StatusOK, "nodes.html", d)
}

type nodeData struct {
	frame
	Name     string
	Context  *statestore.BootActionContext
	Statuses []statestore.BootActionStatus
	Data     []statestore.BuildData
	MoreData bool
}

func (c *console) nodePage(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	ctx := r.Context()
	d := nodeData{frame: frame{Title: "Node " + name, Nav: "nodes"}, Name: name}
	bc, err := c.store.GetBootActionContext(ctx, name)
	switch {
	case errors.Is(err, statestore.ErrNotFound): // build data only
	case err != nil:
		c.storeFail(w, r, "read boot action context", err)
		return
	default:
		d.Context = bc
	}
	st, err := c.store.BootActionStatuses(ctx, name)
	if err != nil {
		c.storeFail(w, r, "read boot action statuses", err)
		return
	}
	for _, s := range st {
		d.Statuses = append(d.Statuses, s)
	}
	sort.Slice(d.Statuses, func(i, j int) bool { return d.Statuses[i].ActionName < d.Statuses[j].ActionName })
	data, err := c.store.LatestBuildDataPreviews(ctx, name, maxShown, maxGenerators+1)
	if err != nil {
		c.storeFail(w, r, "read build data", err)
		return
	}
	if len(data) > maxGenerators {
		data, d.MoreData = data[:maxGenerators], true
	}
	d.Data = data
	if d.Context == nil && len(d.Statuses) == 0 && len(d.Data) == 0 {
		c.fail(w, r, http.StatusNotFound, "node: nothing is recorded for this node")
		return
	}
	c.render(w, r, http.StatusOK, "node.html", d)
}
