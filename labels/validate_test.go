package labels

import (
	"errors"
	"strings"
	"testing"

	"github.com/boxsup/boxsup/messages"
)

func TestValidateKey(t *testing.T) {
	t.Parallel()
	good := []string{
		"app", "a", "A1", "my-app_v1.2", "boxsup.dev/apply-id", "example.com/x",
		strings.Repeat("k", 63), strings.Repeat("a", 63) + "." + strings.Repeat("b", 63) + "/x",
		"a-b.c/d",
	}
	for _, k := range good {
		if err := ValidateKey(k); err != nil {
			t.Errorf("ValidateKey(%q): %v", k, err)
		}
	}
	bad := map[string]string{
		"":                                "the name must not be empty",
		"-app":                            "start and end",
		"app-":                            "start and end",
		"ap p":                            "only letters",
		"ap/p/q":                          "only letters",
		strings.Repeat("k", 64):           "longer than 63",
		"Example.com/x":                   "lower-case DNS subdomain",
		"ex..com/x":                       "lower-case DNS subdomain",
		"-ex.com/x":                       "lower-case DNS subdomain",
		"ex_a.com/x":                      "lower-case DNS subdomain",
		strings.Repeat("a.", 127) + "a/x": "longer than 253",
		"x/":                              "the name must not be empty",
	}
	for k, want := range bad {
		err := ValidateKey(k)
		if err == nil || !errors.Is(err, messages.ErrBadSpec) || !strings.Contains(err.Error(), want) {
			t.Errorf("ValidateKey(%q) = %v, want ErrBadSpec containing %q", k, err, want)
		}
	}
}

func TestValidateValue(t *testing.T) {
	t.Parallel()
	for _, v := range []string{"", "web", "v1.2-rc_3", strings.Repeat("v", 63)} {
		if err := ValidateValue(v); err != nil {
			t.Errorf("ValidateValue(%q): %v", v, err)
		}
	}
	for _, v := range []string{"-web", "web.", "a/b", "a b", strings.Repeat("v", 64), "é"} {
		if err := ValidateValue(v); err == nil || !errors.Is(err, messages.ErrBadSpec) {
			t.Errorf("ValidateValue(%q) = %v, want ErrBadSpec", v, err)
		}
	}
}

func TestValidateSetReportsTheFirstKeyInOrder(t *testing.T) {
	t.Parallel()
	if err := Validate(map[string]string{"app": "web", "tier": ""}); err != nil {
		t.Fatalf("Validate: %v", err)
	}
	err := Validate(map[string]string{"zz": "-bad", "aa": "-bad"})
	if err == nil || !strings.Contains(err.Error(), "label aa:") {
		t.Fatalf("Validate = %v, want the error for key aa", err)
	}
}
