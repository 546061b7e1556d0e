"""The one data path: rows in memory and array-likes read by chunks (:mod:`stream`), the
geometric row buckets that keep compiled programs few (:mod:`buckets`), and the layout of
data and state over devices and processes (:mod:`devices`)."""
