package confline

import (
	"errors"
	"strings"
	"testing"
)

func TestEach(t *testing.T) {
	var got []string
	err := Each("policy", []byte("# head\n\n a  b # tail\nc\n"), func(f []string) error {
		got = append(got, strings.Join(f, "|"))
		return nil
	})
	if err != nil || strings.Join(got, ";") != "a|b;c" {
		t.Errorf("%v %q", err, got)
	}
	boom := errors.New("boom")
	err = Each("watch", []byte("ok\n\nbad line # c\n"), func(f []string) error {
		if f[0] == "bad" {
			return boom
		}
		return nil
	})
	var le *Error
	if !errors.As(err, &le) || le.Line != 3 || !errors.Is(err, boom) || err.Error() != `watch line 3 ("bad line # c"): boom` {
		t.Errorf("%v", err)
	}
}
