# dev's shell profile
. /etc/profile.d/habitat.sh
alias ll='ls -l'
