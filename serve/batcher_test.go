package serve

import (
	"context"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/dnx-ml/dnx"
)

// TestLoneRequestRunsAtOnce: with dynamic batching on and a queue delay far longer than the
// test, a request alone in the server runs at once, in one execution of its own, over either
// protocol and whatever its rows (up to and past PreferredBatch).
func TestLoneRequestRunsAtOnce(t *testing.T) {
	path := tinyModel(t)
	cfg := Config{Models: []ModelSpec{{Name: "tiny", Path: path}}, MaxBatch: 8, PreferredBatch: 4,
		MaxQueueDelay: time.Hour, RequestTimeout: 20 * time.Second}
	ts := startServer(t, cfg, true)
	client := grpcClient(t, ts.grpc)
	execs := 0.0
	for _, tc := range []struct {
		proto string
		rows  int
	}{
		{"rest", 1}, {"grpc", 1}, {"rest", 3}, {"grpc", 4}, {"rest", 8},
	} {
		t.Run(fmt.Sprintf("%s/rows=%d", tc.proto, tc.rows), func(t *testing.T) {
			data := testInput(tc.rows, tc.rows)
			var got []float32
			switch tc.proto {
			case "rest":
				body, hl := binaryInfer(tc.rows, data, true)
				code, h, b := post(t, ts.base+"/v2/models/tiny/infer", body, hl)
				if code != http.StatusOK {
					t.Fatalf("status %d: %s", code, b)
				}
				got = restLogits(t, h, b)
			case "grpc":
				resp, err := client.ModelInfer(context.Background(), grpcInfer("tiny", tc.rows, data))
				if err != nil {
					t.Fatal(err)
				}
				got = bytesFloat32(resp.GetRawOutputContents()[0])
			}
			if d := maxAbsDiff(got, directRun(t, path, tc.rows, data)); d != 0 {
				t.Errorf("max abs diff %g against Session.Run, want 0", d)
			}
			execs++
			text := scrape(t, ts.metrics)
			if n := metricValue(text, "nv_inference_exec_count", "tiny", "1"); n != execs {
				t.Errorf("nv_inference_exec_count = %v, want %v (one execution per lone request)", n, execs)
			}
			if n := metricValue(text, "nv_inference_pending_request_count", "tiny", "1"); n != 0 {
				t.Errorf("nv_inference_pending_request_count = %v, want 0", n)
			}
		})
	}
}

// TestGatherWaitsOnlyForArrivingRequests holds the only instance busy while requests queue
// behind it, then checks how the next batch forms: with no request arriving it runs at once
// with what is queued (a queue delay of an hour is not waited out); while a request is being
// decoded (arrive) it waits, up to MaxQueueDelay after its first request was queued, for
// requests to join it.
func TestGatherWaitsOnlyForArrivingRequests(t *testing.T) {
	path := tinyModel(t)
	for _, tc := range []struct {
		name     string
		arriving bool // a request is being decoded while the batch forms
		delay    time.Duration
		// late sends the second request only once the executor has taken the first queued one
		// (or, with nothing arriving, once the first is answered: it must not have waited).
		late      bool
		wantExecs float64 // the blocker's, then the queued requests'
	}{
		{"nothing arriving: queued requests run at once", false, time.Hour, false, 2},
		{"nothing arriving: a late request runs alone", false, time.Hour, true, 3},
		{"a request arriving: the batch waits for it", true, time.Second, true, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := newGate()
			cfg := Config{Models: []ModelSpec{{Name: "tiny", Path: path}}, MaxBatch: 8,
				MaxQueueDelay: tc.delay, Instances: 1}
			cfg.beforeRun = g.hook
			ts := startServer(t, cfg, true)
			m, _ := ts.srv.repo.lookup("tiny", "")
			b := m.batch
			submit := func(seed int) chan error {
				errc := make(chan error, 1)
				go func() {
					x, err := dnx.NewTensor([]int{1, 3, 16, 16}, testInput(1, seed))
					if err == nil {
						_, err = b.submit(context.Background(), map[string]*dnx.Tensor{"input": x}, 1)
					}
					errc <- err
				}()
				return errc
			}
			blocker := submit(1) // alone: runs at once, and holds the instance at the gate
			<-g.entered
			first := submit(2)
			waitFor(t, "a request queued", func() bool { return b.queuedRequests() == 1 })
			var queued []chan error
			if !tc.late {
				queued = append(queued, submit(3))
				waitFor(t, "two requests queued", func() bool { return b.queuedRequests() == 2 })
			}
			if tc.arriving {
				done := b.arrive()
				defer done()
			}
			close(g.release)
			answers := []chan error{blocker, first}
			if tc.late {
				// The executor has the instance and the first request: the batch is forming.
				waitFor(t, "the executor took the first request", func() bool { return b.queuedRequests() == 0 })
				if !tc.arriving {
					if err := <-first; err != nil {
						t.Fatalf("first queued request: %v", err)
					}
					answers = answers[:1]
				}
				queued = append(queued, submit(3))
			}
			for i, c := range append(answers, queued...) {
				select {
				case err := <-c:
					if err != nil {
						t.Fatalf("request %d: %v", i, err)
					}
				case <-time.After(20 * time.Second):
					t.Fatalf("request %d: no answer in 20s", i)
				}
			}
			if n := metricValue(scrape(t, ts.metrics), "nv_inference_exec_count", "tiny", "1"); n != tc.wantExecs {
				t.Errorf("nv_inference_exec_count = %v, want %v", n, tc.wantExecs)
			}
		})
	}
}
