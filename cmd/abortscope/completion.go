package main

import (
	"fmt"
	"io"
	"strings"

	"github.com/urfave/cli/v2"
)

// Shell completion speaks urfave/cli's protocol: the shell runs the words
// typed so far with --generate-bash-completion appended (and the word
// being typed before it, when that word starts with "-"), and abortscope
// prints one candidate a line. Nothing runs in that mode but the
// completer. The scripts are urfave's autocomplete examples, named for
// abortscope and cut to what it needs.

const completionFlag = "--generate-bash-completion"

const bashCompletion = `# bash completion for abortscope. Load it in this shell with
#   source <(abortscope completion bash)
# or for every shell with
#   abortscope completion bash > ~/.local/share/bash-completion/completions/abortscope
_abortscope() {
  local cur=${COMP_WORDS[COMP_CWORD]} opts
  local words=("${COMP_WORDS[@]:0:COMP_CWORD}")
  # after --, words are arguments: running them could run a command
  [[ " ${words[*]} " == *" -- "* ]] && return
  if [[ $cur == -* ]]; then
    opts=$("${words[@]}" "$cur" --generate-bash-completion 2>/dev/null)
  else
    opts=$("${words[@]}" --generate-bash-completion 2>/dev/null)
  fi
  COMPREPLY=($(compgen -W "$opts" -- "$cur"))
}
complete -o bashdefault -o default -F _abortscope abortscope
`

const zshCompletion = `#compdef abortscope
# zsh completion for abortscope. Load it in this shell (after compinit) with
#   source <(abortscope completion zsh)
# or for every shell with
#   abortscope completion zsh > "${fpath[1]}/_abortscope"
_abortscope() {
  local -a opts words_before
  local cur=${words[CURRENT]}
  words_before=("${(@)words[1,CURRENT-1]}")
  # after --, words are arguments: running them could run a command
  (( ${words_before[(I)--]} )) && { _files; return }
  if [[ $cur == -* ]]; then
    opts=("${(@f)$("${words_before[@]}" "$cur" --generate-bash-completion 2>/dev/null)}")
  else
    opts=("${(@f)$("${words_before[@]}" --generate-bash-completion 2>/dev/null)}")
  fi
  if [[ -n ${opts[1]} ]]; then
    _describe 'abortscope' opts
  else
    _files
  fi
}
if [[ $funcstack[1] == _abortscope ]]; then
  _abortscope "$@"
else
  compdef _abortscope abortscope
fi
`

func completionCommand(stdout io.Writer) *cli.Command {
	return &cli.Command{
		Name:      "completion",
		Usage:     "print the bash or zsh completion script",
		ArgsUsage: "bash|zsh",
		Description: "Prints a script that completes abortscope's commands and flags as you type, by asking\n" +
			"abortscope itself (abortscope ... --generate-bash-completion); a flag's value and an argument\n" +
			"complete as file names.\n\n" +
			"Examples:\n" +
			"   source <(abortscope completion bash)          # this bash\n" +
			"   abortscope completion bash > ~/.local/share/bash-completion/completions/abortscope\n" +
			"   abortscope completion zsh > \"${fpath[1]}/_abortscope\"   # zsh; then start a new shell",
		Action: func(cc *cli.Context) error {
			if cc.NArg() != 1 {
				return usagef("give the shell: abortscope completion bash, or abortscope completion zsh")
			}
			switch sh := cc.Args().First(); sh {
			case "bash":
				_, err := io.WriteString(stdout, bashCompletion)
				return err
			case "zsh":
				_, err := io.WriteString(stdout, zshCompletion)
				return err
			default:
				return usagef("no completion for %q: abortscope has it for bash and zsh", sh)
			}
		},
	}
}

// completer is the cli.BashCompleteFunc of every command: the app calls it
// for the command the words typed so far lead to. args are the app's
// arguments, whose last before --generate-bash-completion is the word
// being typed when it starts with "-" (the scripts pass it then only).
func completer(args []string, w io.Writer) cli.BashCompleteFunc {
	return func(cc *cli.Context) {
		for _, c := range completions(cc.Command, args) {
			fmt.Fprintln(w, c)
		}
	}
}

// completions is what may follow the words of args in cmd: its flags
// starting with the word being typed, when it starts with "-"; else its
// subcommands. None (the shell then completes file names) for a flag's
// value, or an argument of a command that has no subcommands.
func completions(cmd *cli.Command, args []string) []string {
	last := ""
	if n := len(args); n >= 2 && args[n-1] == completionFlag {
		last = args[n-2]
	}
	var out []string
	if strings.HasPrefix(last, "-") {
		typed := strings.TrimLeft(last, "-")
		if findFlag(cmd.Flags, typed) != nil {
			// A whole flag name: either typed out, or (with the word being
			// typed empty) waiting for its value. Neither has a candidate.
			return nil
		}
		for _, f := range cmd.Flags {
			if v, ok := f.(cli.VisibleFlag); ok && !v.IsVisible() {
				continue
			}
			if name := f.Names()[0]; strings.HasPrefix(dashed(name), last) {
				out = append(out, dashed(name))
			}
		}
		return out
	}
	for _, c := range cmd.VisibleCommands() {
		out = append(out, c.Name)
	}
	return out
}
