"""Media: the caller's images, videos and audio checked and inlined (`inputs`), the MP4 box check every saved video
passes (`mp4`), and the preview frames a result shows (`previews`)."""
