package config

import (
	"errors"
	"strconv"

	"github.com/connectord/connectord/connectors"
)

// Instantiator turns a config entry into a connector; *registry.Registry
// implements it.
type Instantiator interface {
	Instantiate(e connectors.Entry, res connectors.Resolver) (*connectors.Instance, error)
}

// Build validates every entry against its type's spec and returns the
// connectors, or an *Error listing every problem in the file: schema
// problems, duplicate names and two connectors claiming one resource.
func (f *File) Build(reg Instantiator, res connectors.Resolver) ([]*connectors.Instance, error) {
	var (
		out    []*connectors.Instance
		probs  []Problem
		names  = map[string]int{}
		claims = map[string]string{}
	)
	for i, e := range f.Connectors {
		display := displayName(e.Name, i)
		if prev, dup := names[e.Name]; dup && e.Name != "" {
			probs = append(probs, Problem{Line: f.loc.connectorKey(i, "name"), Connector: display, Field: "name",
				Message: "duplicate name (first used by connector #" + strconv.Itoa(prev+1) + "); names must be unique"})
		}
		names[e.Name] = i
		inst, err := reg.Instantiate(e, res)
		var ve *connectors.ValidationError
		switch {
		case errors.As(err, &ve):
			for _, p := range ve.Problems {
				probs = append(probs, Problem{Line: f.loc.connectorKey(i, p.Field), Connector: display, Field: p.Field, Message: p.Message})
			}
			continue
		case err != nil:
			probs = append(probs, Problem{Line: f.loc.connectorKey(i, ""), Connector: display, Message: err.Error()})
			continue
		}
		if inst.ResourceID != "" {
			key := inst.ResourceType + " " + inst.ResourceID
			if other, taken := claims[key]; taken {
				probs = append(probs, Problem{Line: f.loc.connectorKey(i, "resource_id"), Connector: display, Field: "resource_id",
					Message: "connector " + strconv.Quote(other) + " already serves " + inst.ResourceID + "; one resource needs one connector"})
				continue
			}
			claims[key] = e.Name
		}
		out = append(out, inst)
	}
	if len(probs) > 0 {
		return nil, newError(f.Path, probs)
	}
	return out, nil
}
