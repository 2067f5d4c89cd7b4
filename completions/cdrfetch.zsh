#compdef cdrfetch

_cdrfetch_completion() {
  eval $(env _TYPER_COMPLETE_ARGS="${words[1,$CURRENT]}" _CDRFETCH_COMPLETE=complete_zsh cdrfetch)
}

compdef _cdrfetch_completion cdrfetch
