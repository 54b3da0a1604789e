# bash completion for isclua: options, profile names, subcommands and files.
# Installed by `make install` to share/bash-completion/completions/isclua.

# The profile names of isclua's config file ($ISCLUA_CONFIG, or
# $XDG_CONFIG_HOME/isclua/config.lua): the keys whose value opens a table,
# read as text, since sourcing the file could run a secret_command.
_isclua_profiles()
{
	local file=${ISCLUA_CONFIG:-${XDG_CONFIG_HOME:-$HOME/.config}/isclua/config.lua}
	[ -r "$file" ] || return
	sed -n -e 's/^[[:space:]]*\([A-Za-z_][A-Za-z0-9_]*\)[[:space:]]*=[[:space:]]*{.*/\1/p' \
		-e 's/^[[:space:]]*\[[[:space:]]*["'\'']\([^"'\'']*\)["'\''][[:space:]]*\][[:space:]]*=[[:space:]]*{.*/\1/p' \
		"$file" | grep -vx profiles
}

_isclua()
{
	local cur=${COMP_WORDS[COMP_CWORD]} prev=${COMP_WORDS[COMP_CWORD-1]}
	local options="-e -i -l -v -E -W - -- --profile --sim --dry-run --journal --help --version
		--lock --lock-wait --timeout --log-level --log-format --log-file"
	COMPREPLY=()
	case $prev in
	--profile) mapfile -t COMPREPLY < <(compgen -W "$(_isclua_profiles)" -- "$cur"); return ;;
	--log-level) mapfile -t COMPREPLY < <(compgen -W "debug info warn error" -- "$cur"); return ;;
	--log-format) mapfile -t COMPREPLY < <(compgen -W "text json" -- "$cur"); return ;;
	-e | -l | --lock-wait | --timeout) return ;;
	--lock | --log-file | --journal) mapfile -t COMPREPLY < <(compgen -f -- "$cur"); return ;;
	esac
	if [ "$COMP_CWORD" -eq 1 ] && [[ $cur != -* ]]; then
		mapfile -t COMPREPLY < <(compgen -W "sim journal undo" -- "$cur"; compgen -f -- "$cur")
	elif [[ $cur == -* ]]; then
		mapfile -t COMPREPLY < <(compgen -W "$options" -- "$cur")
	else
		mapfile -t COMPREPLY < <(compgen -f -- "$cur")
	fi
}
complete -o filenames -F _isclua isclua
