package fleet

import (
	"context"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
)

// forecastKey holds a pool's forecast: what the forecaster expects each
// coming hour's load to call for, which the controller turns into a floor.
const forecastKey = "FORECAST"

// Forecast is the forecaster's last word on a pool.
type Forecast struct {
	// At is when it was made.
	At time.Time `dynamodbav:"at" json:"at"`
	// LeadSeconds is how long the pool takes from a decision to a node
	// at full weight: the floor rises this far ahead of a peak.
	LeadSeconds int `dynamodbav:"leadSeconds" json:"leadSeconds"`
	// Hours are the coming hours, each with the nodes its load is
	// expected to call for at its peak.
	Hours []ForecastHour `dynamodbav:"hours" json:"hours"`
	// Reason says what the forecast rests on.
	Reason string `dynamodbav:"reason" json:"reason"`
}

// ForecastHour is one hour of a forecast.
type ForecastHour struct {
	Hour  time.Time `dynamodbav:"hour" json:"hour"`
	Nodes int       `dynamodbav:"nodes" json:"nodes"`
}

// Lead is the forecast's lead time.
func (f Forecast) Lead() time.Duration { return time.Duration(f.LeadSeconds) * time.Second }

// NodesAt is the nodes the forecast expects the hour of t to call for; ok
// is false for an hour it does not cover.
func (f Forecast) NodesAt(t time.Time) (nodes int, ok bool) {
	hour := t.UTC().Truncate(time.Hour)
	for _, h := range f.Hours {
		if h.Hour.UTC().Equal(hour) {
			return h.Nodes, true
		}
	}
	return 0, false
}

// PutForecast replaces a pool's forecast.
func (s *Store) PutForecast(ctx context.Context, pool string, f Forecast) error {
	item, err := attributevalue.MarshalMap(f)
	if err != nil {
		return fmt.Errorf("encoding the forecast of pool %s: %w", pool, err)
	}
	for k, v := range key(poolKey(pool), forecastKey) {
		item[k] = v
	}
	if _, err := s.db.PutItem(ctx, &dynamodb.PutItemInput{TableName: &s.table, Item: item}); err != nil {
		return fmt.Errorf("writing the forecast of pool %s: %w", pool, err)
	}
	return nil
}

// Forecast reads a pool's forecast; ok is false before the first.
func (s *Store) Forecast(ctx context.Context, pool string) (f Forecast, ok bool, err error) {
	out, err := s.db.GetItem(ctx, &dynamodb.GetItemInput{TableName: &s.table, Key: key(poolKey(pool), forecastKey), ConsistentRead: aws.Bool(false)})
	if err != nil {
		return Forecast{}, false, fmt.Errorf("reading the forecast of pool %s: %w", pool, err)
	}
	if out.Item == nil {
		return Forecast{}, false, nil
	}
	if err := attributevalue.UnmarshalMap(out.Item, &f); err != nil {
		return Forecast{}, false, fmt.Errorf("decoding the forecast of pool %s: %w", pool, err)
	}
	return f, true, nil
}
