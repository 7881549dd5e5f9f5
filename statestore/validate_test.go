package statestore_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/drydock-go/statemgmt/statestore"
)

// jsonCorpus: documents at and around every rule of PostgreSQL's jsonb
// input, written as Go string literals (so `\\u0000` is an escaped backslash).
func jsonCorpus() map[string]string {
	c := map[string]string{
		"object":                               `{"a":[1,2,{"b":null}],"c":true}`,
		"scalar string":                        `"x"`,
		"whitespace around":                    " \t\n null \r\n",
		"duplicate keys":                       `{"a":1,"a":2}`,
		"NUL escape in a value":                `{"a":"\u0000"}`,
		"NUL escape in a key":                  `{"\u0000":1}`,
		"NUL escape mid-string":                `["ab\u0000cd"]`,
		"upper-case NUL escape":                `"\U0000"`,
		"escaped backslash then u0000":         `"\\u0000"`,
		"two escaped backslashes then u0000":   `"\\\\u0000"`,
		"escaped backslash then a NUL escape":  `"\\\u0000"`,
		"escaped quote then u0000 text":        `"\"u0000"`,
		"u0000 as plain text":                  `"u0000"`,
		"escape of U+0001":                     `"\u0001"`,
		"escape of U+FFFF":                     `"\uffff"`,
		"surrogate pair":                       `"\ud83d\ude00"`,
		"last surrogate pair":                  `"\uDBFF\uDFFF"`,
		"two surrogate pairs":                  `"\ud83d\ude00\ud83d\ude01"`,
		"lone high surrogate":                  `"\ud800"`,
		"lone low surrogate":                   `"\udc00"`,
		"low then high":                        `"\udc00\ud800"`,
		"high then high":                       `"\ud800\ud800"`,
		"high then a letter escape":            `"\ud800\u0041"`,
		"high then a plain letter":             `"\ud800A"`,
		"high then a newline escape":           `"\ud800\n"`,
		"high in a key":                        `{"\ud800":1}`,
		"raw UTF-8":                            `"ünïcödé 🚀"`,
		"invalid UTF-8":                        "\"\xff\"",
		"overlong UTF-8":                       "\"\xc0\xaf\"",
		"UTF-8 surrogate":                      "\"\xed\xa0\x80\"",
		"byte order mark":                      "\ufeff{}",
		"leading zero":                         `01`,
		"minus alone":                          `-`,
		"trailing point":                       `1.`,
		"leading point":                        `.5`,
		"plus sign":                            `+1`,
		"NaN":                                  `NaN`,
		"trailing comma":                       `[1,]`,
		"single quotes":                        `{'a':1}`,
		"empty":                                ``,
		"two documents":                        `1 2`,
		"minus zero":                           `-0`,
		"exponent forms":                       `[1e5, 1E+5, 1e-5, -2.5E-3]`,
		"1e200000":                             `1e200000`,
		"1e200000 in an array":                 `[1, 1e200000]`,
		"-1e200000":                            `-1e200000`,
		"1e-200000":                            `1e-200000`,
		"largest exponent":                     `1e131071`,
		"9.99e131071":                          `9.99e131071`,
		"1e131072":                             `1e131072`,
		"0.001e131074":                         `0.001e131074`,
		"0.001e131075":                         `0.001e131075`,
		"smallest scale":                       `1e-16383`,
		"1.5e-16383":                           `1.5e-16383`,
		"10e-16384":                            `10e-16384`,
		"zero with a huge exponent":            `0e200000`,
		"zero with the largest exponent":       `0e1073741822`,
		"zero with too large an exponent":      `0e1073741823`,
		"zero with a huge negative exponent":   `0e-200000`,
		"zero with a long exponent":            `0e99999999999999999999`,
		"0.0e-16382":                           `0.0e-16382`,
		"0.0e-16383":                           `0.0e-16383`,
		"exponent with leading zeros":          `1e0000000000000000000005`,
		"negative exponent with leading zeros": `1e-0000000000000000016383`,
		"131072 integer digits":                "1" + strings.Repeat("0", 131071),
		"131073 integer digits":                "1" + strings.Repeat("0", 131072),
		"16383 fraction digits":                "0." + strings.Repeat("0", 16382) + "1",
		"16384 fraction digits":                "0." + strings.Repeat("0", 16383) + "1",
		"16384 fraction zeros":                 "0." + strings.Repeat("0", 16384),
		"many digits both sides":               strings.Repeat("9", 1000) + "." + strings.Repeat("9", 1000) + "e-100",
		"nesting 10000 deep":                   strings.Repeat("[", 10000) + strings.Repeat("]", 10000),
		"unterminated string":                  `"abc`,
		"control character in a string":        "\"a\tb\"",
		"invalid escape":                       `"\x"`,
		"short unicode escape":                 `"\u12"`,
	}
	return c
}

// TestGoValidationAgreesWithDatabase runs corpora through the store's
// validation (the public calls) and through PostgreSQL directly (raw SQL,
// no Go validation) and asserts that they agree: a value Go accepts is
// stored and read back intact; a value Go rejects is rejected by the server
// too, and the server's error maps to ErrInvalidInput. Go's rejection names
// the field and writes nothing.
func TestGoValidationAgreesWithDatabase(t *testing.T) {
	ctx := context.Background()
	s, pool := newStore(t, statestore.Options{})

	// dbAccepts runs sql with arg in a transaction that is rolled back and
	// maps a rejection through the store's error mapping.
	dbAccepts := func(t *testing.T, sql string, arg any) (bool, error) {
		t.Helper()
		tx, err := pool.Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer tx.Rollback(ctx)
		if _, err := tx.Exec(ctx, sql, arg); err != nil {
			mapped := statestore.MapErrorForTest("raw", err)
			if !errors.Is(mapped, statestore.ErrInvalidInput) {
				t.Fatalf("the server's rejection %v maps to %v, not ErrInvalidInput", err, mapped)
			}
			return false, mapped
		}
		return true, nil
	}

	t.Run("json", func(t *testing.T) {
		for name, doc := range jsonCorpus() {
			t.Run(name, func(t *testing.T) {
				dbOK, _ := dbAccepts(t, "SELECT $1::text::jsonb", doc)
				before := count(t, pool, "SELECT count(*) FROM tasks")
				task, err := s.CreateTask(ctx, statestore.NewTask{Action: "noop", NodeFilter: json.RawMessage(doc)})
				goOK := err == nil
				if goOK != dbOK {
					t.Fatalf("Go accepts: %v (%v); PostgreSQL accepts: %v", goOK, err, dbOK)
				}
				if !goOK {
					wantInvalid(t, err, "task.NodeFilter")
					if n := count(t, pool, "SELECT count(*) FROM tasks"); n != before {
						t.Fatal("a rejected task was written")
					}
					return
				}
				got, err := s.GetTask(ctx, task.ID)
				if err != nil {
					t.Fatal(err)
				}
				if !sameJSON(got.NodeFilter, []byte(doc)) && !strings.Contains(name, "huge") && len(doc) < 100000 {
					t.Fatalf("read back %.200s", got.NodeFilter)
				}
			})
		}
	})

	// Numbers around numeric's limits, drawn at random (fixed seed): digits
	// before and after the point, leading zeros after it, and exponents near
	// the limits.
	t.Run("json numbers near the limits", func(t *testing.T) {
		rng := rand.New(rand.NewPCG(14, 22))
		pick := func(vals ...int) int { return vals[rng.IntN(len(vals))] }
		accepted := 0
		for i := range 400 {
			intPart := strings.Repeat("1", pick(0, 1, 3, 4, 5))
			if intPart == "" {
				intPart = "0"
			}
			num := intPart
			if frac := pick(0, 0, 1, 2, 5, 16382, 16383, 16384); frac > 0 {
				zeros := min(frac-1, pick(0, 1, 3, 4))
				num += "." + strings.Repeat("0", zeros) + strings.Repeat("7", frac-zeros)
			}
			if rng.IntN(2) == 0 {
				num = "-" + num
			}
			exp := pick(0, 1, 3, 4, 5, 16379, 16380, 16381, 16382, 16383, 16384, 131066, 131067, 131068, 131069, 131070, 131071, 131072, 131073)
			if rng.IntN(2) == 0 {
				exp = -exp
			}
			if exp != 0 || rng.IntN(4) == 0 {
				num += fmt.Sprintf("e%d", exp)
			}
			dbOK, _ := dbAccepts(t, "SELECT $1::text::jsonb", num)
			_, err := s.CreateTask(ctx, statestore.NewTask{Action: "noop", NodeFilter: json.RawMessage(num)})
			if goOK := err == nil; goOK != dbOK {
				t.Fatalf("number %d (%.60s…, %d characters): Go accepts: %v (%v); PostgreSQL accepts: %v", i, num, len(num), goOK, err, dbOK)
			}
			if dbOK {
				accepted++
			}
		}
		if accepted < 100 || accepted > 300 {
			t.Fatalf("%d of 400 numbers accepted: the corpus does not straddle the limits", accepted)
		}
		t.Logf("%d of 400 numbers accepted", accepted)
	})

	// Deeper than encoding/json's 10 000 levels: Go rejects, naming the
	// field; PostgreSQL (with its default 2 MB stack) would take it. The one
	// intended difference.
	t.Run("json nesting beyond 10000", func(t *testing.T) {
		doc := strings.Repeat("[", 10001) + strings.Repeat("]", 10001)
		_, err := s.CreateTask(ctx, statestore.NewTask{Action: "noop", NodeFilter: json.RawMessage(doc)})
		wantInvalid(t, err, "task.NodeFilter")
		if !strings.Contains(err.Error(), "deeper than 10000") {
			t.Fatalf("message %q does not say why", err)
		}
	})

	t.Run("data format", func(t *testing.T) {
		formats := []string{
			"text/plain", "application/json", "application/vnd.api+json", "a/b", "Text/Plain", "x-y.z/a!#$&^_.+-b",
			"text/plain; charset=utf-8", "text/plain;charset=utf-8", "text/plain  ;x", "text/plain;", "text/plain; ;;=",
			"text/plain;\nx", "text/plain; é", "text/plain;" + strings.Repeat("é", 244), "text/plain;" + strings.Repeat("é", 245),
			"text/plain;" + strings.Repeat("x", 244), "text/plain;" + strings.Repeat("x", 245),
			"", " text/plain", "text/plain ", "text /plain", "text/ plain", "text/*", "*/*", "text/plain\n", "text/plain\n;x",
			"text\tplain", "text/plain\t;x", "a/", "/b", "a//b", "a/b/c", "tëxt/plain", "json", "-a/b", "a/-b", ".a/b",
			"text/plain\x00", "text/plain;\xff", "text/plain;\x00x",
		}
		for i, f := range formats {
			t.Run(fmt.Sprintf("%d %.40q", i, f), func(t *testing.T) {
				dbOK, dbErr := dbAccepts(t, "INSERT INTO build_data (node_name, task_id, generator, data_format, data_element) VALUES ('n1', gen_random_uuid(), 'g', $1, 'x')", f)
				task := uuid.New()
				_, err := s.InsertBuildData(ctx, statestore.NewBuildData{NodeName: "n1", TaskID: task, Generator: "g", DataFormat: f, DataElement: "x"})
				if goOK := err == nil; goOK != dbOK {
					t.Fatalf("Go accepts: %v (%v); PostgreSQL accepts: %v (%v)", goOK, err, dbOK, dbErr)
				}
				if !dbOK {
					wantInvalid(t, err, "buildData.DataFormat")
					var inv *statestore.InvalidInputError
					if errors.As(dbErr, &inv); !strings.Contains(f, "\x00") && !strings.Contains(f, "\xff") && inv.Field != "data_format" {
						t.Fatalf("the server's rejection names %q, want the field data_format", inv.Field)
					}
					if n := count(t, pool, "SELECT count(*) FROM build_data WHERE task_id = $1", task); n != 0 {
						t.Fatal("a rejected record was written")
					}
					return
				}
				page, err := s.BuildData(ctx, statestore.BuildDataQuery{TaskID: &task})
				if err != nil || len(page.Records) != 1 || page.Records[0].DataFormat != f {
					t.Fatalf("read back %+v, %v", page, err)
				}
			})
		}
	})

	t.Run("node name", func(t *testing.T) {
		names := []string{"n1", "node-01.rack_2", strings.Repeat("n", 280), strings.Repeat("n", 281), "", "-n", ".n", "n 1",
			"ñ", "n1\n", "n/1", "n\x00"}
		for i, n := range names {
			t.Run(fmt.Sprintf("%d %.20q", i, n), func(t *testing.T) {
				dbOK, dbErr := dbAccepts(t, "INSERT INTO build_data (node_name, task_id, generator, data_format, data_element) VALUES ($1, gen_random_uuid(), 'g', 'text/plain', 'x')", n)
				_, err := s.InsertBuildData(ctx, statestore.NewBuildData{NodeName: n, TaskID: uuid.New(), Generator: "g", DataFormat: "text/plain", DataElement: "x"})
				if goOK := err == nil; goOK != dbOK {
					t.Fatalf("Go accepts: %v (%v); PostgreSQL accepts: %v (%v)", goOK, err, dbOK, dbErr)
				}
				if !dbOK {
					wantInvalid(t, err, "buildData.NodeName")
				}
			})
		}
	})
}

// Go's data-format rule is the CHECK constraint's: the same pattern text.
func TestDataFormatRuleIsTheCheckConstraint(t *testing.T) {
	_, pool := newStore(t, statestore.Options{})
	var def string
	if err := pool.QueryRow(context.Background(),
		"SELECT pg_get_constraintdef(oid) FROM pg_constraint WHERE conname = 'build_data_data_format_check'").Scan(&def); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(def, "'"+statestore.DataFormatPatternForTest+"'") || !strings.Contains(def, "char_length(data_format) <= 255") {
		t.Fatalf("CHECK %s\ndoes not hold Go's pattern %s and limit 255", def, statestore.DataFormatPatternForTest)
	}
}

// Every constraint of the schema maps to a column it constrains, so no error
// ever names a constraint instead of the field.
func TestEveryConstraintNamesItsColumn(t *testing.T) {
	_, pool := newStore(t, statestore.Options{})
	rows, err := pool.Query(context.Background(), `
		SELECT c.conrelid::regclass::text, c.conname, c.contype::text,
		       array(SELECT a.attname::text FROM pg_attribute a WHERE a.attrelid = c.conrelid AND a.attnum = ANY (c.conkey))
		FROM pg_constraint c JOIN pg_namespace n ON n.oid = c.connamespace
		WHERE n.nspname = 'public' AND c.contype IN ('c', 'u', 'f', 'p') AND c.conrelid::regclass::text <> 'schema_version'
		ORDER BY 1, 2`)
	if err != nil {
		t.Fatal(err)
	}
	type constraint struct {
		table, name, kind string
		columns           []string
	}
	all, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (constraint, error) {
		var c constraint
		err := r.Scan(&c.table, &c.name, &c.kind, &c.columns)
		return c, err
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(all) < 20 {
		t.Fatalf("only %d constraints found", len(all))
	}
	for _, c := range all {
		if c.kind == "p" || c.kind == "u" && !strings.HasSuffix(c.name, "_key") {
			continue // unique violations name their key columns from the server's detail
		}
		col := statestore.ConstraintColumnForTest(c.table, c.name)
		found := false
		for _, want := range c.columns {
			found = found || col == want
		}
		if !found {
			t.Errorf("constraint %s on %s maps to %q, not one of its columns %v: name it <table>_<column>_<suffix> or add it to irregularConstraints",
				c.name, c.table, col, c.columns)
		}
	}
}
