"""The language server's services, shared by the LSP handlers of `features/`: the document store, the
measured results and their background worker, jobs and progress, edit planning, position conversion,
the assembled engine and the status notification. They hold no handlers; the engine knows nothing of
them. Import each from its module (`from lsp_server.session.documents import DocumentState`)."""
