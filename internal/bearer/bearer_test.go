package bearer

import "testing"

func TestMatch(t *testing.T) {
	for _, tt := range []struct {
		header string
		want   bool
	}{
		{"Bearer s3cret", true},
		{"bearer s3cret", true},
		{"Bearer s3cret2", false},
		{"Bearer s3cre", false},
		{"Basic s3cret", false},
		{"s3cret", false},
		{"Bearer ", false},
		{"", false},
	} {
		if got := Match(tt.header, "s3cret"); got != tt.want {
			t.Errorf("Match(%q) = %v, want %v", tt.header, got, tt.want)
		}
	}
}
