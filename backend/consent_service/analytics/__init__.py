"""Analytics of the staff console, fed by Rasa's event broker (never by Rasa's tables).

`consumer` reads the events Rasa publishes (the SQL broker's table in `make run`, a RabbitMQ
queue in the production profile), `intake` turns each into the facts the console needs, masked
once, and `store` writes them into this service's own tables (`tables`), idempotently.
"""
