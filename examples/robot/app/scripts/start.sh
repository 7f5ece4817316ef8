#!/bin/sh
exec /opt/robot/bin/robotd "$@"
