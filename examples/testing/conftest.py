"""The recipes need nothing here: once mqlite is installed, its pytest plugin gives the
``mqtt_broker``, ``mqtt_client`` and ``mqtt_async_client`` fixtures to every test."""
