package cli

import (
	"fmt"
	"strings"
	"text/tabwriter"

	"github.com/connectord/connectord/connectors"
	"github.com/connectord/connectord/registry"
)

// list-types and describe-type read this binary's own type registry: the
// daemon runs the same binary, so asking it would add a failure mode and
// tell nothing new.

func runListTypes(e *env, args []string) int {
	fs := e.flagSet("list-types", "[flags]", "List the connector types this connectord knows, as ZenML's\n`service-connector list-types` does.")
	typ := fs.String("type", "", "only this connector type")
	rt := fs.String("resource-type", "", "only types serving this resource type")
	am := fs.String("auth-method", "", "only types offering this auth method")
	asJSON := fs.Bool("json", false, "print JSON (the full type specs)")
	if code, ok := e.parse(fs, args, 0); !ok {
		return code
	}
	specs := registry.Default.List(registry.Filter{Type: *typ, ResourceType: *rt, AuthMethod: *am})
	if *asJSON {
		if specs == nil {
			specs = []connectors.TypeSpec{}
		}
		return e.printJSON(specs)
	}
	if len(specs) == 0 {
		fmt.Fprintln(e.stderr, "no connector type matches")
		return exitOK
	}
	w := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "NAME\tTYPE\tRESOURCE TYPES\tAUTH METHODS\tAUTO-CONFIGURE\tEXPIRY (s, min/default/max)")
	for _, s := range specs {
		var rts, ams, exp []string
		for _, r := range s.ResourceTypes {
			rts = append(rts, r.ID)
		}
		for _, a := range s.AuthMethods {
			ams = append(ams, a.ID)
			if b := a.Expiration; b != nil {
				exp = append(exp, fmt.Sprintf("%s: %d/%d/%d", a.ID, b.Min, b.Default, b.Max))
			}
		}
		if len(exp) == 0 {
			exp = []string{"none"}
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\n", s.Name, s.Type, strings.Join(rts, ", "), strings.Join(ams, ", "), yesNo(s.SupportsAutoConfiguration), strings.Join(exp, "; "))
	}
	_ = w.Flush()
	return exitOK
}

func runDescribeType(e *env, args []string) int {
	fs := e.flagSet("describe-type", "TYPE [flags]", "Show a connector type: its resource types and each auth method's config\nfields, with secret fields marked.")
	asJSON := fs.Bool("json", false, "print JSON")
	if code, ok := e.parse(fs, args, 1); !ok {
		return code
	}
	if fs.NArg() != 1 {
		fmt.Fprintln(e.stderr, "connectord describe-type: name one connector type (see `connectord list-types`)")
		return exitUsage
	}
	t, ok := registry.Default.Lookup(fs.Arg(0))
	if !ok {
		return e.fail("unknown connector type %q (see `connectord list-types`)", fs.Arg(0))
	}
	s := t.Spec
	if *asJSON {
		return e.printJSON(s)
	}
	out := e.stdout
	fmt.Fprintf(out, "%s (%s)\n%s\n\nauto-configure: %s\n\nResource types:\n", s.Name, s.Type, s.Description, yesNo(s.SupportsAutoConfiguration))
	for _, r := range s.ResourceTypes {
		ids := "no resource ids"
		if r.SupportsInstances {
			ids = "resource ids"
		}
		fmt.Fprintf(out, "  %s: %s (%s; auth methods: %s)\n", r.ID, r.Description, ids, strings.Join(r.AuthMethods, ", "))
	}
	fmt.Fprintln(out, "\nAuth methods:")
	for _, a := range s.AuthMethods {
		fmt.Fprintf(out, "  %s: %s\n", a.ID, a.Description)
		if b := a.Expiration; b != nil {
			fmt.Fprintf(out, "    expiration_seconds: min %d, default %d, max %d\n", b.Min, b.Default, b.Max)
		} else {
			fmt.Fprintln(out, "    credentials do not expire")
		}
		w := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
		fmt.Fprintln(w, "    FIELD\tTYPE\tREQUIRED\tSECRET\tDEFAULT\tDESCRIPTION")
		for _, f := range a.Fields {
			def := ""
			if f.Default != nil {
				def = fmt.Sprint(f.Default)
			}
			fmt.Fprintf(w, "    %s\t%s\t%s\t%s\t%s\t%s\n", f.Name, f.Type, yesNo(f.Required), yesNo(f.Secret), def, f.Description)
		}
		_ = w.Flush()
	}
	return exitOK
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}
