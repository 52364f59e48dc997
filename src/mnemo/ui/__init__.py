"""The memory viewer: server-rendered pages at /ui/ to see, search and fix what mnemo keeps.

Plain HTML with a little progressive JavaScript, no build step and nothing fetched from
elsewhere: every view is a URL with a `.json` twin, and every write goes through the same
service rules as the REST API. access.py decides who may look and guards the writes.
"""
