package telemetrytest

import (
	dto "github.com/prometheus/client_model/go"
)

// Family is one metric family of a scrape.
type Family struct{ f *dto.MetricFamily }

// Value returns the sum of the values (counter, gauge) or of the counts (histogram) of the
// series whose labels include labels.
func (f *Family) Value(labels map[string]string) float64 {
	if f == nil {
		return 0
	}
	var sum float64
	for _, m := range f.f.GetMetric() {
		if !matches(m, labels) {
			continue
		}
		switch {
		case m.GetCounter() != nil:
			sum += m.GetCounter().GetValue()
		case m.GetGauge() != nil:
			sum += m.GetGauge().GetValue()
		case m.GetHistogram() != nil:
			sum += float64(m.GetHistogram().GetSampleCount())
		case m.GetUntyped() != nil:
			sum += m.GetUntyped().GetValue()
		}
	}
	return sum
}

func matches(m *dto.Metric, labels map[string]string) bool {
	for k, v := range labels {
		found := false
		for _, l := range m.GetLabel() {
			if l.GetName() == k && l.GetValue() == v {
				found = true
			}
		}
		if !found {
			return false
		}
	}
	return true
}

// Value returns family name's Value in a scrape, 0 when the family is absent.
func Value(families map[string]*Family, name string, labels map[string]string) float64 {
	return families[name].Value(labels)
}
