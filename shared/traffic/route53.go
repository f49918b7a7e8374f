// Package traffic moves client traffic onto and off media nodes: weighted
// Route53 records (one per node) or load-balancer targets, and the guard
// that must hold between two steps of a shift.
package traffic

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/route53"
	"github.com/aws/aws-sdk-go-v2/service/route53/types"

	"github.com/mediascale/mediascale/events"
	"github.com/mediascale/mediascale/shared/pool"
)

// FullWeight is the weight of a node carrying its full share. A shift step
// of p % gives the new node p % of it, so at 10 % it gets a tenth of what
// each serving node gets, and at 100 % an equal share.
const FullWeight = 100

// StepWeight is a node's weight at a shift step. A step above zero never
// rounds down to zero, which would silently take the node out.
func StepWeight(percent int) int {
	w := (FullWeight*percent + 50) / 100
	if percent > 0 && w == 0 {
		w = 1
	}
	return w
}

// Route53 is the part of the Route53 client traffic uses.
type Route53 interface {
	ChangeResourceRecordSets(ctx context.Context, in *route53.ChangeResourceRecordSetsInput, opts ...func(*route53.Options)) (*route53.ChangeResourceRecordSetsOutput, error)
	ListResourceRecordSets(ctx context.Context, in *route53.ListResourceRecordSetsInput, opts ...func(*route53.Options)) (*route53.ListResourceRecordSetsOutput, error)
}

// Records manages one weighted record per node under the pool's name, with
// the node id as SetIdentifier.
type Records struct{ r53 Route53 }

// NewRecords returns a Records.
func NewRecords(c Route53) *Records { return &Records{r53: c} }

func fqdn(name string) string {
	if strings.HasSuffix(name, ".") {
		return name
	}
	return name + "."
}

// SetWeight creates or updates the node's record with the given weight.
func (r *Records) SetWeight(ctx context.Context, p pool.Pool, node, ip string, weight int) error {
	cfg := p.Traffic.Route53
	_, err := r.r53.ChangeResourceRecordSets(ctx, &route53.ChangeResourceRecordSetsInput{
		HostedZoneId: aws.String(cfg.HostedZoneID),
		ChangeBatch: &types.ChangeBatch{
			Comment: aws.String(fmt.Sprintf("mediascale: %s weight %d", node, weight)),
			Changes: []types.Change{{Action: types.ChangeActionUpsert, ResourceRecordSet: &types.ResourceRecordSet{
				Name: aws.String(fqdn(cfg.RecordName)), Type: types.RRTypeA, SetIdentifier: aws.String(node),
				Weight: aws.Int64(int64(weight)), TTL: aws.Int64(int64(cfg.TTL)),
				ResourceRecords: []types.ResourceRecord{{Value: aws.String(ip)}},
			}}},
		},
	})
	if err != nil {
		return fmt.Errorf("setting weight %d on record %s/%s: %w", weight, cfg.RecordName, node, err)
	}
	return nil
}

// Weight reads the node's current record; found is false when it has none.
func (r *Records) Weight(ctx context.Context, p pool.Pool, node string) (weight int, ip string, found bool, err error) {
	rec, err := r.find(ctx, p, node)
	if err != nil || rec == nil {
		return 0, "", false, err
	}
	if len(rec.ResourceRecords) > 0 {
		ip = aws.ToString(rec.ResourceRecords[0].Value)
	}
	return int(aws.ToInt64(rec.Weight)), ip, true, nil
}

// Remove deletes the node's record. A missing record is not an error, so
// rollback and drain can repeat it safely.
func (r *Records) Remove(ctx context.Context, p pool.Pool, node, _ string) error {
	rec, err := r.find(ctx, p, node)
	if err != nil || rec == nil {
		return err
	}
	_, err = r.r53.ChangeResourceRecordSets(ctx, &route53.ChangeResourceRecordSetsInput{
		HostedZoneId: aws.String(p.Traffic.Route53.HostedZoneID),
		ChangeBatch:  &types.ChangeBatch{Changes: []types.Change{{Action: types.ChangeActionDelete, ResourceRecordSet: rec}}},
	})
	var notFound *types.InvalidChangeBatch
	if errors.As(err, &notFound) && strings.Contains(err.Error(), "not found") {
		return nil
	}
	if err != nil {
		return fmt.Errorf("removing record %s/%s: %w", p.Traffic.Route53.RecordName, node, err)
	}
	return nil
}

// find pages through the zone from the pool's record name for the node's
// set.
func (r *Records) find(ctx context.Context, p pool.Pool, node string) (*types.ResourceRecordSet, error) {
	var found *types.ResourceRecordSet
	err := r.each(ctx, p, func(rec types.ResourceRecordSet) bool {
		if aws.ToString(rec.SetIdentifier) == node {
			found = &rec
			return true
		}
		return false
	})
	return found, err
}

// each pages through the zone from the pool's record name and hands visit
// every record of that name until visit says stop or the name's records
// end.
func (r *Records) each(ctx context.Context, p pool.Pool, visit func(types.ResourceRecordSet) (stop bool)) error {
	cfg := p.Traffic.Route53
	in := &route53.ListResourceRecordSetsInput{
		HostedZoneId: aws.String(cfg.HostedZoneID), StartRecordName: aws.String(fqdn(cfg.RecordName)), StartRecordType: types.RRTypeA,
	}
	seen := false
	for {
		out, err := r.r53.ListResourceRecordSets(ctx, in)
		if err != nil {
			return fmt.Errorf("listing records %s: %w", cfg.RecordName, err)
		}
		for _, rec := range out.ResourceRecordSets {
			// Records sort in Route53's own label order, so names are
			// compared for equality only: the pool's records are one run
			// of equal names.
			if aws.ToString(rec.Name) != fqdn(cfg.RecordName) {
				if seen {
					return nil
				}
				continue
			}
			seen = true
			if visit(rec) {
				return nil
			}
		}
		if !out.IsTruncated {
			return nil
		}
		in.StartRecordName, in.StartRecordType, in.StartRecordIdentifier = out.NextRecordName, out.NextRecordType, out.NextRecordIdentifier
	}
}

// Record is one node's weighted record as read.
type Record struct {
	Node   string
	Weight int
	set    types.ResourceRecordSet
}

// Current reads the pool's weighted records, by node.
func (r *Records) Current(ctx context.Context, p pool.Pool) (map[string]Record, error) {
	out := map[string]Record{}
	err := r.each(ctx, p, func(rec types.ResourceRecordSet) bool {
		id := aws.ToString(rec.SetIdentifier)
		out[id] = Record{Node: id, Weight: int(aws.ToInt64(rec.Weight)), set: rec}
		return false
	})
	return out, err
}

// Reweigh moves a record read by Current to another weight in one atomic
// batch: delete the record exactly as it was read, create it with the new
// weight. When the record changed or went in between (a drain took it
// away, a shift step moved it), Route53 refuses the whole batch and
// nothing changes: changed is false and err nil.
func (r *Records) Reweigh(ctx context.Context, p pool.Pool, rec Record, weight int) (changed bool, err error) {
	next := rec.set
	next.Weight = aws.Int64(int64(weight))
	_, err = r.r53.ChangeResourceRecordSets(ctx, &route53.ChangeResourceRecordSetsInput{
		HostedZoneId: aws.String(p.Traffic.Route53.HostedZoneID),
		ChangeBatch: &types.ChangeBatch{
			Comment: aws.String(fmt.Sprintf("mediascale: %s weight %d -> %d by headroom", rec.Node, rec.Weight, weight)),
			Changes: []types.Change{
				{Action: types.ChangeActionDelete, ResourceRecordSet: &rec.set},
				{Action: types.ChangeActionCreate, ResourceRecordSet: &next},
			},
		},
	})
	var stale *types.InvalidChangeBatch
	if errors.As(err, &stale) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("reweighing record %s/%s: %w", p.Traffic.Route53.RecordName, rec.Node, err)
	}
	return true, nil
}

// ByMode returns the weight setter for a pool's traffic mode.
func ByMode(records *Records, targets *Targets) func(mode string) (Weights, error) {
	return func(mode string) (Weights, error) {
		switch mode {
		case pool.TrafficRoute53:
			return records, nil
		case pool.TrafficALB, pool.TrafficNLB:
			return targets, nil
		}
		return nil, events.Invalid("traffic mode %q is not route53, alb or nlb", mode)
	}
}
