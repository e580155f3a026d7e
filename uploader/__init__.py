"""Stage 2 of the suite: archives to cold storage, and back.

The uploader streams a sealed cycle as one encrypted archive into a store (:mod:`.upload`,
:mod:`.multipart`, :mod:`.bundle`, :mod:`.crypto`, :mod:`.stores`), keeps the catalogue of what
went where (:mod:`.catalogue`), keeps the store in step and under its budget
(:mod:`.maintenance`) and brings archives back (:mod:`.restore`). It imports ``localbackup``,
never ``watcher``. See docs/architecture.md.
"""
