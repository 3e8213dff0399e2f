# Sample gateway configuration in HCL (LEADERWAY_CONFIG=config/gateway.hcl); the same keys as
# gateway.yaml. The gateway never takes the seal key; give it the advertisement key through
# LEADERWAY_ADVERTISEMENT_KEY.
storage "redis" {
  redis_url = "redis://127.0.0.1:6379"
  prefix    = "leaderway"
}

listener "tcp" {
  address = "0.0.0.0:8300"
}

# Prometheus scrapes GET /metrics here (no token); keep it off the load balancer.
metrics_address = "0.0.0.0:8302"

trusted_proxies = "10.0.0.0/24"  # the load balancer's addresses
failover_wait   = "10s"
drain_delay     = "5s"

# Where reads go: "active" (every request to the active node) or "spread" (reads also to healthy
# standbys, fewest outstanding first; writes to the active). See the README, "Spread reads".
read_routing = "active"
