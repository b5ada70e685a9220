"""Video: screencast capture, JPEG decode, one shared encoding per session and its fan-out to
every viewer's track, with the bitrate and picture-size control that keeps it on the link."""
