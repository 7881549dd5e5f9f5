// Package hostile holds the corpus of hostile input values the store's tests
// feed to every public entry point, and the markup payloads the console's
// tests render: one place, so every test that renders or stores user data
// tries the same values.
package hostile

import "strings"

// Value is one named hostile value.
type Value struct {
	Name string
	V    string
}

// Strings is the store's hostile-string corpus: every public entry point of
// statestore either rejects each with a clear error or stores it intact
// (statestore's TestHostileInputEverywhere).
var Strings = []Value{
	{"empty", ""},
	{"space", " "},
	{"NUL byte", "a\x00b"},
	{"invalid UTF-8", "\xff\xfe\xfd"},
	{"UTF-16 surrogate bytes", "\xed\xa0\x80"},
	{"quote injection", "x'; DROP TABLE tasks; --"},
	{"comment injection", "/* */ OR 1=1 --"},
	{"backslashes", `\\x00\'\"`},
	{"LIKE wildcards", "%_%"},
	{"dollar quoting", "$$; DELETE FROM tasks; $$"},
	{"semicolon", ";"},
	{"unicode", "nœud-ünïcødé-🚀"},
	{"RTL override", "\u202eevil"},
	{"newlines", "a\nb\r\nc"},
	{"tab and bell", "a\tb\a"},
	{"1 MiB", strings.Repeat("a", 1<<20)},
	{"JSON text", `{"a":1}`},
	{"format verbs", "%s%d%v%n%!"},
	{"nil UUID text", "00000000-0000-0000-0000-000000000000"},
	{"max-length-plus-one 65", strings.Repeat("x", 65)},
	{"257 characters", strings.Repeat("y", 257)},
}

// JSON is the store's hostile-JSON corpus, for the JSON-valued fields.
var JSON = []Value{
	{"truncated", `{"a":`},
	{"NUL escape", `{"a":"\u0000"}`},
	{"bare word", `nope`},
	{"trailing garbage", `{} {}`},
	{"deep nesting", strings.Repeat("[", 200) + strings.Repeat("]", 200)},
	{"number", `42`},
	{"string", `"s"`},
	{"null", `null`},
	{"object", `{"k": "v'; DROP TABLE tasks;--"}`},
	{"array", `[1, "two", {"3": null}]`},
	{"invalid UTF-8 inside", "{\"a\":\"\xff\"}"},
	{"huge", `{"k":"` + strings.Repeat("z", 1<<20) + `"}`},
}

// Markup is script and markup injection payloads: stored as data, a page
// rendering them must show them as text and execute nothing. Each payload
// that would execute calls alert() or adds an element with id "pwned".
var Markup = []Value{
	{"script tag", `<script>alert(1)</script>`},
	{"img onerror", `<img src=x onerror="alert(2)">`},
	{"svg onload", `<svg onload=alert(3)>`},
	{"attribute break-out", `" autofocus onfocus="alert(4)" x="`},
	{"single-quote break-out", `' onmouseover='alert(5)' x='`},
	{"javascript URL", `javascript:alert(6)`},
	{"closing textarea", `</textarea><script>alert(7)</script>`},
	{"closing title", `</title><script>alert(8)</script>`},
	{"injected element", `<b id="pwned">pwned</b>`},
	{"iframe srcdoc", `<iframe srcdoc="<script>parent.alert(9)</script>"></iframe>`},
	{"template expression", `{{.}}${alert(10)}`},
	{"JSON break-out", `"}];alert(11);//`},
	{"comment break-out", `--><script>alert(12)</script><!--`},
	{"CDATA", `<![CDATA[<script>alert(13)</script>]]>`},
	{"SSE field injection", "x\n\ndata: <img src=x onerror=alert(14)>\n\nevent: message\ndata: {\"message\":\"<b id=pwned>\"}"},
	{"SSE raw newlines", "x\n\nevent: message\ndata: <script>alert(15)</script>\n\n"},
}
