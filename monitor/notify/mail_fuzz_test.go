package notify

import (
	"bytes"
	"io"
	"mime"
	"mime/quotedprintable"
	"net/mail"
	"slices"
	"strings"
	"testing"
	"time"
)

// FuzzBuildMail: whatever the Mail holds, build either refuses it or
// returns a message that net/mail parses, with exactly the headers it
// writes (none injected), the subject and body decoding back to what was
// given, CRLF line ends only and no line over 998 characters. A header
// value with CR or LF is always refused.
func FuzzBuildMail(f *testing.F) {
	f.Add("ether@cpan.example", "[cpan-tlog] Try-Tiny 0.32", "Hello,\n.dot line\n", "https://tlog.example/unsubscribe?t=x", "<a@b>")
	f.Add("a@b.example", "é\r\nBcc: v@evil.example", "x", "", "")
	f.Add("a@b.example\nBcc: v@evil.example", "s", "t", "", "")
	f.Add("a@b.example", "=?utf-8?q?fake?=", "line\r\n.\r\nQUIT\r\n", "https://x.example/u", "id@host")
	f.Add("a@b.example", strings.Repeat("word ", 300), strings.Repeat("x", 2000), "", "")
	from, err := parseFrom("cpan-tlog monitor <monitor@tlog.example>")
	if err != nil {
		f.Fatal(err)
	}
	now := time.Date(2026, 12, 6, 22, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, to, subject, text, unsub, msgid string) {
		m := Mail{To: to, Subject: subject, Text: text, ListUnsubscribe: unsub, MessageID: msgid}
		msg, rcpt, err := build(from, m, now)
		if strings.ContainsAny(to+subject+unsub+msgid, "\r\n") {
			if err == nil {
				t.Fatalf("CR/LF in a header value accepted: %+q", m)
			}
			return
		}
		if err != nil {
			return
		}
		if rcpt != to {
			t.Fatalf("recipient %q, To %q", rcpt, to)
		}
		for i, line := range bytes.Split(msg, []byte("\r\n")) {
			if len(line) > 998 {
				t.Fatalf("line %d has %d characters", i, len(line))
			}
			if bytes.ContainsAny(line, "\r\n") {
				t.Fatalf("bare CR or LF in line %d: %q", i, line)
			}
		}
		parsed, err := mail.ReadMessage(bytes.NewReader(msg))
		if err != nil {
			t.Fatalf("net/mail cannot read the message: %v\n%s", err, msg)
		}
		want := []string{"Auto-Submitted", "Content-Transfer-Encoding", "Content-Type", "Date", "From", "Message-Id", "Mime-Version", "Subject", "To"}
		if unsub != "" {
			want = append(want, "List-Unsubscribe", "List-Unsubscribe-Post")
		}
		var got []string
		for k, v := range parsed.Header {
			if len(v) != 1 {
				t.Fatalf("header %s appears %d times", k, len(v))
			}
			got = append(got, k)
		}
		slices.Sort(got)
		slices.Sort(want)
		if !slices.Equal(got, want) {
			t.Fatalf("headers %q, want %q\n%s", got, want, msg)
		}
		if got := parsed.Header.Get("To"); got != to {
			t.Fatalf("To %q, want %q", got, to)
		}
		dec := new(mime.WordDecoder)
		gotSubject, err := dec.DecodeHeader(parsed.Header.Get("Subject"))
		if err != nil {
			t.Fatalf("Subject %q: %v", parsed.Header.Get("Subject"), err)
		}
		if wantSubject := strings.ToValidUTF8(subject, "\uFFFD"); gotSubject != wantSubject {
			t.Fatalf("Subject decodes to %q, want %q (header %q)", gotSubject, wantSubject, parsed.Header.Get("Subject"))
		}
		body, err := io.ReadAll(quotedprintable.NewReader(parsed.Body))
		if err != nil {
			t.Fatalf("body: %v", err)
		}
		wantBody := strings.ReplaceAll(normalizeBody(text), "\n", "\r\n")
		if wantBody != "" && !strings.HasSuffix(wantBody, "\r\n") {
			wantBody += "\r\n"
		}
		if string(body) != wantBody {
			t.Fatalf("body decodes to %q, want %q", body, wantBody)
		}
	})
}
