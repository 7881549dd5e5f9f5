package drydockimport

import "testing"

// TestPositionIntRefusesCorruptBookkeeping: a numeric resume position that
// is not a number is an error, never a silent restart from 0.
func TestPositionIntRefusesCorruptBookkeeping(t *testing.T) {
	for _, tc := range []struct {
		pos     string
		want    int64
		wantErr bool
	}{
		{"", 0, false},
		{"0", 0, false},
		{"5000", 5000, false},
		{"nodes:abc", 0, true},
		{"-1", 0, true},
		{"12x", 0, true},
	} {
		got, err := positionInt(&progress{table: "tasks", position: tc.pos})
		if got != tc.want || (err != nil) != tc.wantErr {
			t.Errorf("positionInt(%q) = %d, %v; want %d, error %v", tc.pos, got, err, tc.want, tc.wantErr)
		}
	}
}
