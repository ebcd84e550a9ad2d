package secret_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"testing"

	"github.com/connectord/connectord/secret"
)

const plain = "hunter2-s3cr3t"

func TestValueNeverPrintsItself(t *testing.T) {
	t.Parallel()
	v := secret.New(plain)
	type holder struct {
		User string
		Pass secret.Value
		Ptr  *secret.Value
	}
	h := holder{User: "u", Pass: v, Ptr: &v}
	cases := map[string]string{
		"%v":       fmt.Sprintf("%v", v),
		"%+v":      fmt.Sprintf("%+v", v),
		"%#v":      fmt.Sprintf("%#v", v),
		"%s":       fmt.Sprintf("%s", v),
		"%q":       fmt.Sprintf("%q", v),
		"%x":       fmt.Sprintf("%x", v),
		"%d":       fmt.Sprintf("%d", v),
		"struct v": fmt.Sprintf("%v", h),
		"struct+v": fmt.Sprintf("%+v", h),
		"struct#v": fmt.Sprintf("%#v", h),
		"ptr":      fmt.Sprintf("%v", &v),
		"println":  fmt.Sprintln(v, h),
	}
	js, err := json.Marshal(h)
	if err != nil {
		t.Fatal(err)
	}
	cases["json"] = string(js)
	var buf bytes.Buffer
	slog.New(slog.NewJSONHandler(&buf, nil)).Info("m", "secret", v, "holder", h)
	slog.New(slog.NewTextHandler(&buf, nil)).Info("m", "secret", v, slog.Any("p", &v))
	cases["slog"] = buf.String()
	for name, out := range cases {
		if strings.Contains(out, plain) || strings.Contains(out, fmt.Sprintf("%x", plain)) {
			t.Errorf("%s leaked the secret: %s", name, out)
		}
		if !strings.Contains(out, secret.Mask) {
			t.Errorf("%s does not show the mask: %s", name, out)
		}
	}
}

func TestRevealAndZero(t *testing.T) {
	t.Parallel()
	if got := secret.New(plain).Reveal(); got != plain {
		t.Fatalf("Reveal() = %q", got)
	}
	var z secret.Value
	if !z.IsZero() || z.String() != "" {
		t.Fatalf("zero value: IsZero=%v String=%q", z.IsZero(), z.String())
	}
	a1, a2, b := secret.New("a"), secret.New("a"), secret.New("b")
	if a1 != a2 || a1 == b {
		t.Fatal("Value must compare by content")
	}
}
