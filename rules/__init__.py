"""Data tables (TOML) the advisor reasons over; read them through `advisor.rules`."""
