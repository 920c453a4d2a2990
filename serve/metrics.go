package serve

import (
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// metrics are Triton's inference metrics, with its names, labels (model, version) and units
// (cumulative microseconds in counters), so that dashboards built for Triton read dnx. They live
// in the server's own registry, not Prometheus's global one: two servers in one process (tests)
// each count their own requests.
type metrics struct {
	registry *prometheus.Registry

	success, failure       *prometheus.CounterVec
	inferences, executions *prometheus.CounterVec
	requestUS, queueUS     *prometheus.CounterVec
	inputUS, inferUS       *prometheus.CounterVec
	outputUS               *prometheus.CounterVec
	pending                *prometheus.GaugeVec
}

func newMetrics() *metrics {
	labels := []string{"model", "version"}
	counter := func(name, help string) *prometheus.CounterVec {
		return prometheus.NewCounterVec(prometheus.CounterOpts{Name: name, Help: help}, labels)
	}
	m := &metrics{
		registry:   prometheus.NewRegistry(),
		success:    counter("nv_inference_request_success", "Number of successful inference requests, all batch sizes"),
		failure:    counter("nv_inference_request_failure", "Number of failed inference requests, all batch sizes"),
		inferences: counter("nv_inference_count", "Number of inferences performed (a request of batch N counts N)"),
		executions: counter("nv_inference_exec_count", "Number of model executions performed (a dynamic batch counts once)"),
		requestUS:  counter("nv_inference_request_duration_us", "Cumulative inference request duration in microseconds (includes cached requests)"),
		queueUS:    counter("nv_inference_queue_duration_us", "Cumulative inference queuing duration in microseconds"),
		inputUS:    counter("nv_inference_compute_input_duration_us", "Cumulative compute input duration in microseconds (batching the inputs)"),
		inferUS:    counter("nv_inference_compute_infer_duration_us", "Cumulative compute inference duration in microseconds"),
		outputUS:   counter("nv_inference_compute_output_duration_us", "Cumulative inference compute output duration in microseconds (splitting the outputs)"),
		pending: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "nv_inference_pending_request_count",
			Help: "Instantaneous number of pending requests awaiting execution per-model.",
		}, labels),
	}
	m.registry.MustRegister(m.success, m.failure, m.inferences, m.executions, m.requestUS,
		m.queueUS, m.inputUS, m.inferUS, m.outputUS, m.pending,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// handler serves the registry in Prometheus's text format.
func (m *metrics) handler() http.Handler {
	return promhttp.HandlerFor(m.registry, promhttp.HandlerOpts{})
}

// timing is what one request spent where, reported by its batcher.
type timing struct {
	queue, input, infer, output time.Duration
}

// modelMetrics are one model version's series, resolved once when it loads: looking a series
// up by its labels on every update hashes the label values and takes a lock per counter, nine
// times a request.
type modelMetrics struct {
	success, failure       prometheus.Counter
	inferences, executions prometheus.Counter
	requestUS, queueUS     prometheus.Counter
	inputUS, inferUS       prometheus.Counter
	outputUS               prometheus.Counter
	pending                prometheus.Gauge
}

// forModel resolves the series of one model version. They are all exported from then on, at 0
// until counted, as Triton exports a loaded model's.
func (m *metrics) forModel(name, version string) *modelMetrics {
	l := []string{name, version}
	return &modelMetrics{
		success: m.success.WithLabelValues(l...), failure: m.failure.WithLabelValues(l...),
		inferences: m.inferences.WithLabelValues(l...), executions: m.executions.WithLabelValues(l...),
		requestUS: m.requestUS.WithLabelValues(l...), queueUS: m.queueUS.WithLabelValues(l...),
		inputUS: m.inputUS.WithLabelValues(l...), inferUS: m.inferUS.WithLabelValues(l...),
		outputUS: m.outputUS.WithLabelValues(l...), pending: m.pending.WithLabelValues(l...),
	}
}

// of returns model's series, resolving them if the model has none yet (not loaded).
func (m *metrics) of(model *servedModel) *modelMetrics {
	if model.met != nil {
		return model.met
	}
	return m.forModel(model.name, model.version)
}

// request records a finished request: its outcome and total duration, and on success the
// inferences it asked for (its batch size) and its share of the batch's times. Like Triton,
// each request of a dynamic batch is charged the whole batch's compute times.
func (m *metrics) request(model *servedModel, rows int, total time.Duration, t timing, err error) {
	mm := m.of(model)
	if err != nil {
		mm.failure.Inc()
		return
	}
	mm.success.Inc()
	mm.inferences.Add(float64(rows))
	mm.requestUS.Add(us(total))
	mm.queueUS.Add(us(t.queue))
	mm.inputUS.Add(us(t.input))
	mm.inferUS.Add(us(t.infer))
	mm.outputUS.Add(us(t.output))
}

// execution records one model execution (a batch of any size).
func (m *metrics) execution(model *servedModel) {
	m.of(model).executions.Inc()
}

// queued moves the pending-request gauge of model by delta.
func (m *metrics) queued(model *servedModel, delta int) {
	m.of(model).pending.Add(float64(delta))
}

func us(d time.Duration) float64 { return float64(d.Microseconds()) }
