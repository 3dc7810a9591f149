package api

import "testing"

func TestAcceptsGzip(t *testing.T) {
	for h, want := range map[string]bool{
		"":                              false,
		"gzip":                          true,
		"GZIP":                          true,
		"x-gzip":                        true,
		"gzip, deflate, br":             true,
		"br, gzip;q=0.5":                true,
		"gzip;q=0":                      false,
		"gzip; q=0.000":                 false,
		"identity":                      false,
		"br":                            false,
		"*":                             true,
		"*;q=0":                         false,
		"*, gzip;q=0":                   false,
		"gzip;q=0, *":                   false,
		"gzip;q=nonsense":               false,
		"identity;q=1, gzip;q=0.001":    true,
		"deflate, identity, x-gzip;q=1": true,
	} {
		var values []string
		if h != "" {
			values = []string{h}
		}
		if got := acceptsGzip(values); got != want {
			t.Errorf("Accept-Encoding %q: %v, want %v", h, got, want)
		}
	}
	if !acceptsGzip([]string{"br", "gzip"}) {
		t.Error("gzip in a second Accept-Encoding header is not seen")
	}
}
