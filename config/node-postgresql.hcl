# Sample node configuration on PostgreSQL, in OpenBao's form (LEADERWAY_CONFIG=config/node-postgresql.hcl).
# The node creates and migrates its tables (its user needs CREATE on the schema the first time).
# The password belongs in the environment (LEADERWAY_POSTGRESQL_URL), not in this file; TLS with
# sslmode=verify-full against a managed service or Patroni.
storage "postgresql" {
  connection_url = "postgres://leaderway@db.example.com:5432/leaderway?sslmode=verify-full"
  table          = "leaderway_kv"        # OpenBao: table
  ha_table       = "leaderway_ha_locks"  # OpenBao: ha_table; same database, so every write is fenced
  max_parallel   = 16
  ha_enabled     = "true"                # OpenBao's; leaderway is always HA ("false" is refused)
}

listener "tcp" {
  address         = "0.0.0.0:8200"
  cluster_address = "0.0.0.0:8201"
}

api_addr     = "https://vault.example.com"
cluster_addr = "https://10.0.0.11:8201"

gateway_ca_file       = "/etc/leaderway/gateway-ca/ca.crt"
gateway_allowed_names = "leaderway-gateway"

lock_ttl = "5s"
