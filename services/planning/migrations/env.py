from services.planning.db import metadata
from servicekit.db import run_migrations_env

run_migrations_env(metadata)
