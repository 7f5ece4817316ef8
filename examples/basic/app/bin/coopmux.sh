#!/bin/sh
exec coop mux "$@"
