# Sample node configuration in OpenBao's HCL form (LEADERWAY_CONFIG=config/node.hcl); the same
# keys as node.yaml. Environment variables win over every value here; secrets (seal key,
# advertisement key) belong in the environment, not a file.
storage "redis" {
  redis_url = "redis://127.0.0.1:6379"
  prefix    = "leaderway"
}

listener "tcp" {
  address         = "0.0.0.0:8200"
  cluster_address = "0.0.0.0:8201"
  # As OpenBao: /metrics on the API listener needs a token unless this is true.
  telemetry {
    unauthenticated_metrics_access = false
  }
}

# Prometheus scrapes GET /metrics here (no token); keep it off the load balancer.
metrics_address = "0.0.0.0:8202"

api_addr     = "https://vault.example.com"  # the load balancer in front of the gateways
cluster_addr = "https://10.0.0.11:8201"     # this node's address for the cluster channel

# Gateways on the cluster listener: the CA that issues their client certificates (with the
# clientAuth usage), the DNS or URI SANs they may carry (`*` = one label or path segment), and
# an optional CRL, reloaded when the file changes.
gateway_ca_file       = "/etc/leaderway/gateway-ca/ca.crt"
gateway_allowed_names = "leaderway-gateway,spiffe://example.org/ns/leaderway/sa/leaderway-gateway"
# gateway_crl_file    = "/etc/leaderway/gateway-crl/gateways.crl"

lock_ttl           = "5s"
step_down_cooldown = "10s"
