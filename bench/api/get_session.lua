-- wrk script: GET /v1/sessions/{id} with a secret key (env BENCH_KEY, BENCH_SESSION).
wrk.method = "GET"
wrk.path = "/v1/sessions/" .. os.getenv("BENCH_SESSION")
wrk.headers["Authorization"] = "Bearer " .. os.getenv("BENCH_KEY")
done = function(summary, latency, requests)
  io.write(string.format("BENCH status_errors=%d\n", summary.errors.status))
end
