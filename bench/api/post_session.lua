-- wrk script: POST /v1/sessions with a secret key (env BENCH_KEY, BENCH_TENANT optional).
wrk.method = "POST"
wrk.path = "/v1/sessions"
wrk.headers["Authorization"] = "Bearer " .. os.getenv("BENCH_KEY")
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"visitor":{"external_id":"bench-visitor","name":"Bench","custom":{"plan":"pro"}},' ..
           '"expires_in_seconds":600}'
done = function(summary, latency, requests)
  io.write(string.format("BENCH status_errors=%d\n", summary.errors.status))
end
