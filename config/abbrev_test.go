package config

import (
	"reflect"
	"testing"
)

func TestExpandAbbrev(t *testing.T) {
	tests := []struct {
		in      []string
		want    []string
		wantErr string
	}{
		{[]string{"--vers"}, []string{"--version"}, ""},
		{[]string{"--verb", "--list-crl"}, []string{"--verbose", "--list-crls"}, ""},
		{[]string{"--ver"}, nil, `option "--ver" is ambiguous`},
		{[]string{"--server"}, []string{"--server"}, ""},                      // exact name wins
		{[]string{"--log-f", "--vers"}, []string{"--log-file", "--vers"}, ""}, // a value is not expanded
		{[]string{"--ldapt=30"}, []string{"--ldaptimeout=30"}, ""},            // --name=value
		{[]string{"--bogus", "-v"}, []string{"--bogus", "-v"}, ""},            // left for the parser
		{[]string{"--load-crl", "--", "--vers"}, []string{"--load-crl", "--", "--vers"}, ""},
	}
	for _, tc := range tests {
		var o Options = Defaults()
		got, err := ExpandAbbrev(newFlagSet(&o), tc.in)
		if tc.wantErr != "" {
			if err == nil || err.Error() != tc.wantErr {
				t.Errorf("%q: err %v, want %q", tc.in, err, tc.wantErr)
			}
			continue
		}
		if err != nil || !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%q: got %q %v, want %q", tc.in, got, err, tc.want)
		}
	}
}

func TestParseArgsGnuPGWords(t *testing.T) {
	for in, want := range map[string]string{
		"--bogus":    `invalid option "--bogus"`,
		"--log-file": `missing argument for option "--log-file"`,
	} {
		var o Options = Defaults()
		err := ParseArgs(newFlagSet(&o), []string{in})
		if err == nil || err.Error() != want {
			t.Errorf("%s: %v, want %q", in, err, want)
		}
	}
}
