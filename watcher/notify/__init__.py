"""Notifications: ``[notify]`` sends what happened to a URL (JSON, or healthchecks-style pings)
and/or a command.

:mod:`.events` is what a notification says (:class:`~watcher.notify.events.Notice`, its
categories and JSON document), :mod:`.config` the ``[notify]`` section, :mod:`.delivery` the
:class:`~watcher.notify.delivery.Notifier` that delivers off the critical path. The outcome sink
(:mod:`watcher.outcomes`) is what the commands and the service hand their events to.
"""
